# rpm %preun of the stagepass package: $1 is the number of versions left after this one, so
# 0 on erase and 1 on upgrade, when the links must stay.
if [ "$1" -eq 0 ]; then
  rm -f /usr/bin/git-credential-stagepass /usr/bin/docker-credential-stagepass
fi
