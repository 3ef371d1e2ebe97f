"""The one-process plan runner behind scripts/reproduce and scripts/demo (edgeconv.steps)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.steps import expand, groups, read_plan

PLAN = """# a comment
== list the zoo
edgeconv models --json
== inspect two
edgeconv inspect fcn-mnist --json
edgeconv inspect --json gap-mnist --input-shape 56\\,56\\,1
"""


def run_steps(tmp_path, plan: str, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "plan.txt"
    path.write_text(plan)
    return subprocess.run([sys.executable, "-m", "edgeconv.steps", str(path), *extra],
                          capture_output=True, text=True, timeout=300)


def test_read_plan_groups_commands_by_stage():
    stages = read_plan(PLAN)
    assert [s.title for s in stages] == ["list the zoo", "inspect two"]
    assert stages[1].commands == [["inspect", "fcn-mnist", "--json"],
                                  ["inspect", "--json", "gap-mnist", "--input-shape", "56,56,1"]]


def test_stages_marked_alongside_form_groups_between_plain_stages():
    stages = read_plan("== a\nedgeconv models\n==& b\nedgeconv models\n==& c\n"
                       "edgeconv models\n== d\nedgeconv models\n==& e\nedgeconv models\n")
    assert [[s.title for s in g] for g in groups(stages)] == [["a"], ["b", "c"], ["d"], ["e"]]
    assert [s.number for s in stages] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("line", ["python -c 'import os'", "edgeconv 'unclosed"])
def test_read_plan_refuses_what_is_not_an_edgeconv_command(line):
    with pytest.raises(EdgeconvError, match="plan line 2"):
        read_plan("== x\n" + line)


def test_wildcards_expand_when_the_command_runs(tmp_path):
    pattern = str(tmp_path / "*_int8.tflite")
    with pytest.raises(EdgeconvError, match="no file matches"):
        expand([pattern])
    for name in ("b_int8.tflite", "a_int8.tflite", "a_fp32.tflite"):
        (tmp_path / name).write_bytes(b"")
    assert expand(["bench", pattern]) == ["bench", str(tmp_path / "a_int8.tflite"),
                                          str(tmp_path / "b_int8.tflite")]


def test_runs_every_stage_in_one_process_and_times_each(tmp_path):
    summary, log = tmp_path / "stages.md", tmp_path / "commands.txt"
    done = run_steps(tmp_path, PLAN, "--summary", str(summary), "--log", str(log))
    assert done.returncode == 0, done.stderr
    # each command's own output, as the command line prints it
    assert done.stdout.count('"params"') >= 2 and '"fcn-mnist"' in done.stdout
    assert "== [1] list the zoo" in done.stderr and "== [2] inspect two" in done.stderr
    table = summary.read_text().splitlines()
    assert table[0] == "| # | stage | wall s | CPU s |"
    rows = [line.split("|") for line in table[2:]]
    assert [r[2].strip() for r in rows] == ["list the zoo", "inspect two", "**total**"]
    assert float(rows[1][3]) > 0  # inspect builds Keras models: it took time
    assert log.read_text().splitlines() == [
        "edgeconv models --json", "edgeconv inspect fcn-mnist --json",
        "edgeconv inspect --json gap-mnist --input-shape 56,56,1"]


def test_the_first_failing_command_stops_the_plan_with_its_exit_code(tmp_path):
    done = run_steps(tmp_path, "== bad\nedgeconv inspect no-such-model\n== never\n"
                               "edgeconv models\n")
    assert done.returncode == 2
    assert "error: unknown model 'no-such-model'" in done.stderr
    assert "stage 1 failed (exit 2): edgeconv inspect no-such-model" in done.stderr
    assert "== [2] never" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_plan_that_cannot_be_read_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "edgeconv.steps", str(tmp_path / "none.txt")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot read the plan") and "Traceback" not in done.stderr


GROUP = """== first
edgeconv --version
==& inspect fcn
edgeconv inspect fcn-mnist --json
==& inspect gap
edgeconv inspect gap-mnist --json
== last
edgeconv --version
"""


def test_a_group_runs_in_two_workers_each_stage_into_its_own_log(tmp_path):
    summary = tmp_path / "stages.md"
    done = run_steps(tmp_path, GROUP, "--workers", "2", "--summary", str(summary))
    assert done.returncode == 0, done.stderr
    assert "== [2-3] 2 stages, 2 at a time" in done.stderr
    assert "[2] done in" in done.stderr and "[3] done in" in done.stderr
    assert done.stderr.index("== [1] first") < done.stderr.index("== [2-3]") \
        < done.stderr.index("== [4] last")
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == ["02-inspect-fcn.log", "03-inspect-gap.log"]
    assert '"fcn-mnist"' in (tmp_path / "logs" / logs[0]).read_text()
    assert '"gap-mnist"' in (tmp_path / "logs" / logs[1]).read_text()
    assert '"fcn-mnist"' not in done.stdout  # the group's output is in its logs only
    rows = [line.split("|") for line in summary.read_text().splitlines()[2:]]
    assert "(alongside others)" in rows[1][2] and float(rows[1][4]) > 0


def test_a_failing_stage_of_a_group_stops_the_plan_and_shows_its_log(tmp_path):
    plan = ("==& bad\nedgeconv inspect no-such-model\n==& good\nedgeconv models\n"
            "== never\nedgeconv models\n")
    done = run_steps(tmp_path, plan, "--workers", "2")
    assert done.returncode == 2
    assert "stage 1 failed (exit 2): edgeconv inspect no-such-model" in done.stderr
    assert "error: unknown model 'no-such-model'" in done.stderr  # the log's tail
    assert "== [3] never" not in done.stderr and "Traceback" not in done.stderr
