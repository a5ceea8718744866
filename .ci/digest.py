"""Print the few lines that say why a CI test run failed, as the LAST thing CI prints.

CI shows only the tail of its output. A hang's evidence (the test that hung and faulthandler's
stack dump, innermost frames first) sits far above that tail, so after a failed `make test`
`.ci/run` calls this on the saved log: the last test started, the project frames (blink/,
tests/, bench/) of every dumped thread, and pytest's short summary lines. Stdlib only.
"""

import re
import sys

OURS = re.compile(r'File ".*?/(blink|tests|bench)/([^"]+)", line (\d+) in (\S+)')
MAX_LINES = 22


def digest(text: str) -> list[str]:
    # the dumps are written straight after pytest's progress dots, mid-line
    lines = re.sub(r"(?<!\n)(Timeout \(\d+:\d\d:\d\d\)!|Hang dump: )", r"\n\1", text).splitlines()
    out: list[str] = []
    started = [ln for ln in lines if re.match(r"^tests/\S+\.py(::\S+)? ", ln)]
    if started:
        out.append("last test line: " + started[-1][:160])
    hangs = [i for i, ln in enumerate(lines) if ln.startswith("Hang dump: ")]
    faults = [i for i, ln in enumerate(lines) if ln.startswith("Timeout (")]
    if hangs or faults:
        # the last hung test: tests/support/hangs.py's task dump, then faulthandler's threads
        first = hangs[-1] if hangs else faults[-1]
        out.append(lines[first][:200])
        who = ""
        for ln in lines[first + 1:]:
            if ln.startswith("Task "):  # "Task <name> <coroutine repr>"
                who = "  " + " ".join(ln.split()[:2])[:100]
            elif ln.startswith(("Thread 0x", "Current thread 0x")):
                who = "  " + ln.split(" (")[0].strip()
            elif m := OURS.search(ln):
                if who:  # a thread or task is named only when it has a frame of ours
                    out.append(who)
                    who = ""
                out.append(f"    {m[1]}/{m[2]}:{m[3]} {m[4]}")
    out += [ln[:200] for ln in lines if ln.startswith(("FAILED ", "ERROR "))][-8:]
    if len(out) > MAX_LINES:  # keep the head (where it hung) and the tail (what failed)
        out = out[: MAX_LINES - 6] + ["  ..."] + out[-5:]
    return out


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        report = digest(f.read())
    print("==== CI digest: why `make test` failed ====")
    print("\n".join(report) if report else "(nothing recognised in the log)")
