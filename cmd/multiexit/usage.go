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
                 exit status 124. D is read as GNU timeout reads it, a
                 floating-point number of seconds with an optional suffix
                 s, m, h or d (90, 1.5m, 2d, 2.5e-3), or as a Go duration
                 (1m30s, 500ms). 0, the default: never. A duration too long
                 to keep (past about 36 years, 5616000h, 1e400) is
                 practically never; a positive one below a nanosecond
                 (1e-10) fires at once.
    -grace D     time between SIGTERM and SIGKILL whenever a part of the
                 tree is stopped (default 5s; 0: SIGKILL at once). D as for
                 -timeout.
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
    126   COMMAND was found but cannot be executed: a file without x, a
          directory (also one found in PATH, such as "."). A file without
          a #! line is run by /bin/sh, as execvp(3) does.
    127   COMMAND was not found (an empty name included).

SIGNALS
    Every signal a process can catch that is sent to multiexit goes to
    COMMAND (its process group with -g), but SIGCHLD, which is multiexit's
    own children's news:
    SIGTERM, SIGINT   COMMAND then has the grace period to exit; if it has
                      not, its process group gets SIGKILL. When it exits,
                      the rest of the tree is stopped as above, and
                      multiexit exits with COMMAND's status.
    SIGTSTP, SIGTTIN, SIGTTOU
                      go to COMMAND's process group (even without -g),
                      which stops unless it catches them; under a terminal
                      multiexit stops with it (see TERMINAL).
    SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGSTKFLT
                      sent by kill (systemd's watchdog sends SIGABRT) go
                      to COMMAND; a fault of multiexit's own still crashes
                      multiexit (the guardian then stops the tree).
    the others        (SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
                      SIGPIPE, SIGALRM, SIGPWR, SIGURG, the real-time
                      signals, ...) go to COMMAND and stop nothing.
    SIGKILL           cannot be caught; on the cgroup layer the guardian
                      still takes the whole tree down.
    A signal that multiexit was started with ignored (nohup, a shell's
    background job, trap '' PIPE) is ignored by multiexit too and stays
    ignored in COMMAND; COMMAND's signal mask is the one multiexit was
    started with.
    Built without cgo (CGO_ENABLED=0), multiexit cannot see which signals
    its caller ignored or blocked but for SIGHUP, SIGINT and the job-control
    ones (the Go runtime replaces the others before any of multiexit's code
    runs), nor forward SIGURG, SIGPROF and signal 34 (which then ends it).

TERMINAL
    Under a terminal, COMMAND runs in the terminal's foreground, as a
    shell runs a job: it can read the terminal (a REPL, head -1), and
    Ctrl-C and Ctrl-\ go from the terminal to COMMAND's whole process
    group, not to multiexit. Ctrl-Z stops COMMAND and multiexit with it,
    so the shell says "Stopped"; fg or bg continue both (Linux: elsewhere
    multiexit does not stop with COMMAND). When COMMAND exits, multiexit
    takes the foreground back and stops what is left.

CONTAINMENT (Linux; -v names the layer taken)
    cgroup          a writable cgroup v2: nothing escapes, even multiexit's
                    SIGKILL (the guardian).
    subreaper       escapees reparent to multiexit and are stopped by PID;
                    after multiexit's SIGKILL, escapees survive.
    process-group   elsewhere (macOS, BSD): escapees are not caught.
    MULTIEXIT_CONTAINMENT=subreaper or =process-group caps the layer.

SYSTEMD
    With NOTIFY_SOCKET set, COMMAND gets a notify socket of its own, and
    what its tree sends (READY=1, STATUS=, WATCHDOG=1, ...) reaches systemd
    from multiexit, the unit's main process. MAINPID= and descriptor passing
    are dropped. What another process sends there (the socket is abstract:
    any process can) is refused, with a line on standard error; so is what
    a process of another user than multiexit's sent if it has exited and
    been reaped before multiexit read it (a one-shot sender should wait
    until systemd has it: sd_notify_barrier(3)). COMMAND gets
    WATCHDOG_USEC but not WATCHDOG_PID, which names multiexit: the
    watchdog is COMMAND's.

DIFFERENCES FROM TINI, DUMB-INIT, CATATONIT AND GNU TIMEOUT (on purpose)
    - COMMAND killed by a signal: multiexit dies by the same signal (a
      shell shows 143 all the same; systemd counts a clean stop; bash stops
      a script's loop after a Ctrl-C), as GNU timeout does; tini,
      dumb-init and catatonit exit 128+signal, and a Python caller sees
      returncode -15 where they give 143. As PID 1 multiexit exits
      128+signal too.
    - On the cgroup layer multiexit has a second child, its guardian
      (multiexit re-executed), which kills the tree if multiexit is
      SIGKILLed.
    - multiexit moves to "/" before it starts COMMAND, as dumb-init and
      catatonit do (tini stays), so as not to keep a directory busy;
      COMMAND starts where multiexit was started.
    - Inherited descriptors above 2 are kept (catatonit closes them):
      COMMAND has them either way, and multiexit returns only when
      COMMAND's tree is gone.
    - Fault signals sent by kill and SIGTSTP, SIGTTIN, SIGTTOU are
      forwarded (catatonit dies by the former and ignores the latter).
    - A signal the caller ignored stays ignored in COMMAND (GNU timeout
      resets SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGALRM to their
      defaults).
    - Not offered: tini -p, -s, -w; dumb-init -r, -c; GNU timeout -s, -k,
      --foreground, --preserve-status, -v. multiexit is always a reaper
      and always stops the whole tree.

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
