"""Runs a command on a new pseudo-terminal, types argv[1] into it once it has prompted, and
prints what the terminal showed (as JSON) and the command's exit code. For the tests of
prompts that must not echo: a pipe is not a terminal, so only a pty shows what a user sees."""
import json, os, pty, select, sys, time

typed, command = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)
shown = b""

def read_for(seconds):
    global shown
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                shown += os.read(fd, 4096)
            except OSError:
                return

# Wait for the prompt, then type.
deadline = time.time() + 30
while b"(not shown)" not in shown and time.time() < deadline:
    read_for(0.2)
os.write(fd, typed.encode())
code = None
deadline = time.time() + 30
while code is None and time.time() < deadline:
    read_for(0.2)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
        read_for(0.2)
if code is None:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(json.dumps({"shown": shown.decode("utf-8", "replace"), "code": code}))
