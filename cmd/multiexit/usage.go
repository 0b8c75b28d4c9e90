//go:build unix

package main

const usage = `NAME
    multiexit - run a command; when it ends, nothing it started is left

SYNOPSIS
    multiexit [-timeout D] [-grace D] [-g] [-e CODE]... [-v] [--] COMMAND [ARG...]

DESCRIPTION
    multiexit runs COMMAND and waits for it. When COMMAND exits, everything
    it left behind - its process group, and the escapees that left it
    through setsid(1) or a double fork - gets SIGTERM, the grace period,
    then SIGKILL, and multiexit returns only when nothing of the tree is
    left, with COMMAND's status.

    It is a drop-in for tini and dumb-init (a container's init: as PID 1 it
    reaps every zombie and forwards signals) and for GNU timeout, that also
    catches escapees and survives its own SIGKILL: on Linux with a writable
    cgroup v2, COMMAND's tree lives in a cgroup of its own and a guardian
    process kills that cgroup if multiexit dies without stopping it.

OPTIONS
    -timeout D   stop COMMAND's tree after D: SIGTERM to its process group,
                 the grace period, SIGKILL, then the escapees the same way;
                 exit status 124. D is a Go duration (90s, 1m30s) or
                 seconds (90). 0, the default: never.
    -grace D     time between SIGTERM and SIGKILL whenever a part of the
                 tree is stopped (default 5s; 0: SIGKILL at once).
    -g           forward signals to COMMAND's whole process group instead of
                 COMMAND alone (as tini -g does).
    -e CODE      exit 0 when COMMAND exits with CODE (as tini -e does);
                 repeatable. Deaths by a signal are not remapped.
    -v           say what happens on standard error: the containment layer
                 taken, the signals forwarded, the stops.
    -h           this text.

EXIT STATUS
    COMMAND's: its exit code, or death by the same signal (128+signal
    where a signal cannot be used, as PID 1). And:
    124   -timeout fired (the tree was stopped).
    125   multiexit itself failed: a bad flag, no COMMAND, no resources.
    126   COMMAND was found but cannot be executed (a file without a #!
          line is run by /bin/sh, as execvp(3) does).
    127   COMMAND was not found.

SIGNALS
    SIGTERM, SIGINT   go to COMMAND (its group with -g). COMMAND then has the
                      grace period to exit; if it has not, its process group
                      gets SIGKILL. When it exits, the rest of the tree is
                      stopped as above, and multiexit exits with COMMAND's
                      status.
    SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH
                      go to COMMAND (its group with -g) and stop nothing.
    SIGKILL           cannot be caught; on the cgroup layer the guardian
                      still takes the whole tree down.
    A SIGHUP or SIGINT that multiexit was started with ignored (nohup, a
    shell's background job) stays ignored, for COMMAND too.

TERMINAL
    Under a terminal, COMMAND runs in the terminal's foreground, as a
    shell runs a job: it can read the terminal (a REPL, head -1), and
    Ctrl-C and Ctrl-\ go from the terminal to COMMAND's whole process
    group, not to multiexit. When COMMAND exits, multiexit takes the
    foreground back and stops what is left.

CONTAINMENT (Linux; -v names the layer taken)
    cgroup          a writable cgroup v2: nothing escapes, even multiexit's
                    SIGKILL (the guardian).
    subreaper       escapees reparent to multiexit and are stopped by PID;
                    after multiexit's SIGKILL, escapees survive.
    process-group   elsewhere (macOS, BSD): escapees are not caught.
    MULTIEXIT_CONTAINMENT=subreaper or =process-group caps the layer.

SYSTEMD
    With NOTIFY_SOCKET set, COMMAND gets a notify socket of its own, and
    what it sends (READY=1, STATUS=, ...) reaches systemd from multiexit,
    the unit's main process. MAINPID= and descriptor passing are dropped.

EXAMPLES
    A program's leftover children (a script that starts daemons):
        multiexit -- ./integration.sh

    A tree with a time limit, killed 10s after its SIGTERM if need be:
        multiexit -timeout 20m -grace 10s -- make -j8 test

    A test's server that must be gone before the next run (the port is
    free again when multiexit returns):
        multiexit -- sh -c 'python3 -m http.server 8000 & sleep 1; curl -sf localhost:8000 >/dev/null'

    Ctrl-C through a tree: the terminal's SIGINT reaches make's whole
    process group, the escapees are stopped after it, and the shell sees
    make die by SIGINT (a script's loop stops there):
        multiexit -- make -j8

    A container's init (Dockerfile):
        ENTRYPOINT ["multiexit", "--"]
        CMD ["python3", "app.py"]

    A systemd service whose program notifies readiness:
        [Service]
        Type=notify
        ExecStart=/usr/local/bin/multiexit -- /usr/local/bin/app
`
