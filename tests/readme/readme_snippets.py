#!/usr/bin/env python3
"""Runs every code block of README.md, so that what a new user copies works.

Every fenced block is classified here; a block nobody classified fails the test (add it below).

  c, cpp     compiled by the build from this README (`--extract LANG OUT` writes the program: the
             block's #include lines on top, the rest as main's body) and run here in a work dir that
             holds the README's channels.m3u ("&pictures" -> and_pictures, a looping local file).
             They must print the channel's playlist.
  python     run by /usr/bin/python3 against the built module in the same work dir; a fragment that
             needs an `app` and an `engine` gets them from PYTHON_CONTEXT below.
  sh         the commands that talk to a server run against one started here on 127.0.0.1 (a free
             port replaces 8000) with an offline source: hlsrelay-server for curl, uvicorn for the
             FastAPI app. SKIPPED lists the others, with the reason.
  json, no language   channel lists: loaded into an engine, every entry must load without an issue.

Everything started is stopped, every wait is bounded.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# Blocks not run, each with the reason (matched on the block's first line).
SKIPPED = {
    "scripts/setup.sh": "installs missing Debian packages as root (apt) and builds the whole project; "
                        "CI has built it before this test runs",
    "scripts/test.sh": "runs the whole suite, this test included",
    "/usr/bin/python3 -m venv --system-site-packages .venv": "an install step: pip builds the engine again "
                        "from source (setup.py runs CMake, many minutes); the Python blocks run against "
                        "the module of this build tree instead",
}

# What a Python fragment uses but does not define, by a name it uses.
PYTHON_CONTEXT = {
    "app.include_router": (
        "from fastapi import FastAPI\nfrom hlsrelay import Engine\napp = FastAPI()\n"
        "engine = Engine(log_level='error')\nengine.load_file('channels.m3u')\n",
        # ... and what shows it worked: the router answers through the app.
        "from fastapi.testclient import TestClient\n"
        "r = TestClient(app, base_url='http://127.0.0.1').get('/api/v1/channels/streams-status')\n"
        "assert r.status_code == 200, r.text\n"
        "assert r.json()['streams'][0]['stream_id'] == 'and_pictures', r.text\n"
        "print('router ok')\nengine.close()\n",
    ),
}

TIMEOUT = 90  # seconds any one block may take


def blocks(readme):
    """(line, language, text) of every fenced block."""
    out = []
    lines = open(readme, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if m:
            start, lang, body = i + 1, m.group(1), []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((start, lang, "\n".join(body) + "\n"))
        i += 1
    return out


def program(lang, text):
    """A block of C or C++ as a program: its #include lines on top, the rest in main()."""
    includes = [l for l in text.splitlines() if l.startswith("#include")]
    body = [l for l in text.splitlines() if not l.startswith("#include")]
    head = "/* Generated from README.md by tests/readme/readme_snippets.py: do not edit. */\n"
    return head + "\n".join(includes) + "\n\nint main(void) {\n" + "\n".join("    " + l if l else "" for l in body) + \
        "\n    return 0;\n}\n"


def the_block(readme, lang):
    found = [b for b in blocks(readme) if b[1] == lang]
    if len(found) != 1:
        sys.exit(f"README.md has {len(found)} ```{lang} blocks; tests/readme builds exactly one (extend it)")
    return found[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline, proc):
    """Until url answers 200; fails when the server exits or the deadline passes."""
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}) before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within the deadline")
        time.sleep(0.2)


@contextlib.contextmanager
def server(cmd, env, cwd, ready_url):
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_http(ready_url, time.monotonic() + 60, proc)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if out.strip():
            print("  server output:\n    " + out.strip().replace("\n", "\n    "))


def run(cmd, cwd, env=None, shell=False):
    r = subprocess.run(cmd, cwd=cwd, env=env, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=TIMEOUT)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError(f"exit status {r.returncode}\nstdout:\n{out}\nstderr:\n{err}")
    return out


def json_values(text):
    """The JSON values of text, one after another (curl -s prints bodies without newlines)."""
    decoder, values, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return values
        value, i = decoder.raw_decode(text, i)
        values.append(value)


def make_media(path):
    if os.path.exists(path):
        return
    tmp = path + ".tmp"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
                    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", tmp],
                   check=True, timeout=120)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", required=True)
    ap.add_argument("--extract", nargs=2, metavar=("LANG", "OUT"), help="write the program of the c/cpp block")
    ap.add_argument("--c-program")
    ap.add_argument("--c-source")
    ap.add_argument("--cpp-program")
    ap.add_argument("--cpp-source")
    ap.add_argument("--pythonpath")
    ap.add_argument("--server")
    ap.add_argument("--work-dir")
    a = ap.parse_args()

    if a.extract:
        lang, out = a.extract
        text = program(lang, the_block(a.readme, lang)[2])
        if not os.path.exists(out) or open(out, encoding="utf-8").read() != text:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
        return 0

    work = a.work_dir or tempfile.mkdtemp(prefix="hlsrelay-readme-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    media = os.path.join(os.path.dirname(os.path.abspath(work)), "readme-source.ts")
    make_media(media)
    with open(os.path.join(work, "channels.m3u"), "w", encoding="utf-8") as f:
        f.write("#EXTM3U\n#EXTINF:-1 group-title=\"Demo\",&pictures\n#EXTVLCOPT:input-repeat=-1\n" + media + "\n")
    env = dict(os.environ, PYTHONPATH=a.pythonpath, PYTHONDONTWRITEBYTECODE="1")

    failures, ran, skipped = [], 0, 0
    for line, lang, text in blocks(a.readme):
        first = text.splitlines()[0] if text.strip() else ""
        label = f"README.md:{line} ```{lang or '(plain)'}"
        try:
            if lang in ("sh", "bash") and first in SKIPPED:
                print(f"SKIP {label} {first!r}: {SKIPPED[first]}")
                skipped += 1
                continue
            print(f"RUN  {label} {first!r}")
            if lang in ("c", "cpp"):
                built, source = (a.c_program, a.c_source) if lang == "c" else (a.cpp_program, a.cpp_source)
                # The program must be this README's block, not an older build of it.
                if open(source, encoding="utf-8").read() != program(lang, text):
                    raise AssertionError(f"{source} is not this README's block: rebuild")
                out = run([built], cwd=work)
                if "#EXTM3U" not in out or "#EXTINF:" not in out:
                    raise AssertionError(f"the program did not print the playlist:\n{out}")
            elif lang == "python":
                prologue, epilogue = "", ""
                for needle, (pro, epi) in PYTHON_CONTEXT.items():
                    if needle in text:
                        prologue, epilogue = pro, epi
                out = run([sys.executable, "-c", prologue + text + epilogue], cwd=work, env=env)
                if not epilogue and ("#EXTM3U" not in out or "#EXTINF:" not in out):
                    raise AssertionError(f"the example did not print the playlist:\n{out}")
            elif lang in ("json", ""):
                check = ("import sys, hlsrelay\n"
                         "r = hlsrelay.Engine(log_level='off').load(sys.stdin.read())\n"
                         "assert len(r['channels']) == 1 and not r['issues'], r\n")
                subprocess.run([sys.executable, "-c", check], input=text.encode(), env=env, check=True,
                               timeout=TIMEOUT)
            elif lang in ("sh", "bash") and "uvicorn" in text:
                port = free_port()
                cmd = text.strip().replace(".venv/bin/python", sys.executable).replace("--port 8000", f"--port {port}")
                assert f"--port {port}" in cmd, "the uvicorn command no longer names --port 8000"
                with server(["/bin/sh", "-c", cmd], env, work,
                            f"http://127.0.0.1:{port}/api/v1/channels/streams-status"):
                    body = json.load(urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/v1/channels/streams-status", timeout=10))
                    assert body["streams"][0]["stream_id"] == "and_pictures", body
            elif lang in ("sh", "bash") and text.lstrip().startswith("curl "):
                if not shutil.which("curl"):
                    raise AssertionError("curl is not installed (apt-get install curl): the README's commands use it")
                port = free_port()
                demo_dir = os.path.join(work, "media")
                os.makedirs(demo_dir, exist_ok=True)
                shutil.copy(media, os.path.join(demo_dir, "demo.ts"))  # the bundled list's demo channel
                cmd = [a.server, "--listen", f"127.0.0.1:{port}", "--media-dir", demo_dir, "--log-level", "warn"]
                with server(cmd, env, work, f"http://127.0.0.1:{port}/healthz"):
                    out = run(text.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), cwd=work, shell=True)
                    print("  " + out.strip().replace("\n", "\n  ")[:600])
                    replies = json_values(out)
                    statuses = [r for r in replies if isinstance(r, dict) and "state" in r]
                    assert statuses and statuses[-1]["stream_id"] == "demo", out
            else:
                raise AssertionError("a block nobody classified: run it or skip it in tests/readme/readme_snippets.py")
            ran += 1
        except (AssertionError, subprocess.SubprocessError, OSError, ValueError) as e:
            print(f"FAIL {label}: {e}")
            failures.append(label)
    print(f"{ran} blocks ran, {skipped} skipped, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
