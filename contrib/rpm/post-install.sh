# rpm %post of the stagepass package (scripts/bundle-tray): git and docker find their
# credential helpers by name on PATH; both are the CLI, which reads its name from argv[0].
for helper in git-credential-stagepass docker-credential-stagepass; do
  ln -sf stagepass "/usr/bin/$helper"
done
