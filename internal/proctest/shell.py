# The driver of proctest.Shell: an interactive bash on a pseudo-terminal,
# driven with pexpect as a user at a terminal drives it. Requests come on
# standard input, one JSON object a line; each gets one JSON answer a line
# on standard output. A failed request answers with everything the terminal
# showed so far ("screen"). When standard input ends, bash is closed.
import io
import json
import os
import sys
import tempfile

import pexpect

PROMPT = os.environ["MX_SHELL_PROMPT"]
LIMIT = float(os.environ["MX_SHELL_LIMIT"])


def reply(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def main():
    inputrc = tempfile.NamedTemporaryFile("w", suffix=".inputrc", delete=False)
    inputrc.write("set enable-bracketed-paste off\n")
    inputrc.close()
    env = dict(os.environ, PS1=PROMPT, PS2="", PROMPT_COMMAND="", TERM="dumb",
               INPUTRC=inputrc.name, HISTFILE="/dev/null")
    screen = io.StringIO()
    sh = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=env, encoding="utf-8",
                       codec_errors="replace", timeout=LIMIT, dimensions=(50, 2000))
    sh.logfile_read = screen
    try:
        for line in sys.stdin:
            req = json.loads(line)
            try:
                if req["op"] == "send":
                    sh.send(req["text"])
                    reply(ok=True)
                elif req["op"] == "expect":
                    sh.expect(req["re"])
                    reply(ok=True, groups=[sh.match.group(0)] + [g or "" for g in sh.match.groups()])
                elif req["op"] == "eof":
                    sh.expect(pexpect.EOF)
                    sh.close()
                    reply(ok=True, status=sh.exitstatus if sh.exitstatus is not None else -1, screen=screen.getvalue())
                else:
                    reply(ok=False, error="unknown request %r" % req, screen=screen.getvalue())
            except pexpect.TIMEOUT:
                reply(ok=False, error="not shown within %gs" % LIMIT, screen=screen.getvalue())
            except pexpect.EOF:
                reply(ok=False, error="the terminal closed (bash exited)", screen=screen.getvalue())
    finally:
        os.unlink(inputrc.name)
        if sh.isalive():
            sh.close(force=True)


main()
