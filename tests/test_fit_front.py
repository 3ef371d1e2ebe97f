"""study.json's schema (edgeconv.fit.record) and the answer of a study (edgeconv.fit.front):
the Pareto front, the recommended point, why there is none, and the one-line verdict, on
hand-made points whose answers are known. Standard library only: quick."""

from __future__ import annotations

import copy
import json
import os

import pytest

import fit_docs
from edgeconv.errors import EdgeconvError
from edgeconv.fit.front import choose, pareto_front, verdict_line, why_none
from edgeconv.fit.record import STUDY, inside, load_study, write_study

# --- the record --------------------------------------------------------------------------


def test_the_designs_layout_round_trips(tmp_path):
    doc = fit_docs.study()
    path = write_study(tmp_path / "s", doc)
    assert path == tmp_path / "s" / STUDY
    assert load_study(tmp_path / "s") == doc  # the folder
    assert load_study(path) == doc  # or its study.json


def test_a_running_study_loads_with_its_missing_sections_empty(tmp_path):
    doc = fit_docs.study(status="running")
    for key in ("pruning", "rungs", "trials", "finalists", "front", "winner", "verdict",
                "data", "seconds", "versions"):
        del doc[key]
    fit_docs.write(tmp_path, doc)
    loaded = load_study(tmp_path)
    assert loaded["finalists"] == [] and loaded["trials"] == {} and loaded["winner"] is None
    assert loaded["seconds"] == {} and loaded["data"] is None


def _set(doc, path, value):
    """doc with the field at `path` (keys and indices) set to `value`."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


FIRST = fit_docs.FINAL[0]


@pytest.mark.parametrize("path,value,message", [
    (("finalists", 0, "file"), "../../etc/passwd",
     "finalists[0].file must be a relative path inside the folder"),
    (("finalists", 0, "results"), "/abs/results.json",
     "finalists[0].results must be a relative path inside the folder"),
    (("trials", FIRST, "dir"), "trials/../..", "must be a relative path inside the folder"),
    (("request", "max_latency_ms"), "100", "request.max_latency_ms must be a finite number"),
    (("request", "max_latency_ms"), float("inf"), "request.max_latency_ms must be a finite"),
    (("request", "precisions"), ["fp32"], "request.precisions[0] must be one of int8, int16x8"),
    (("status",), "done", "status must be one of running, finished"),
    (("finalists", 0, "accuracy"), 1.5, "finalists[0].accuracy must be a finite number from 0"),
    (("finalists", 0, "fits"), "yes", "finalists[0].fits must be true or false"),
    (("finalists", 0, "ram_bytes"), -1, "finalists[0].ram_bytes must be an integer"),
    (("finalists", 0, "latency_kind"), "guessed", "finalists[0].latency_kind must be one of"),
    (("name",), "two\nlines", "name must be a string (one line)"),
    (("space", "candidates", 0, "key"), "Has Spaces", "must be a candidate key"),
    (("space", "candidates", 0, "options"), {"alpha": [1, 2]}, "options.alpha must be a"),
    (("winner",), "nobody/int8", "winner names 'nobody/int8', which is no finalist"),
    (("front",), ["nobody/int8"], "front[0] names 'nobody/int8', which is no finalist"),
    (("rungs", 0, "promoted"), ["ghost-32"],
     "rungs[0].promoted[0] names 'ghost-32', which is no candidate of the space"),
    (("finalists", 0, "id"), "squeezenet-version1.1-48/int8",
     "finalists[0].id must be <candidate>/<precision>"),
    (("kind",), "something-else", "not an edgeconv study.json"),
    (("schema_version",), 2, "study schema_version 2 is not the 1 this edgeconv reads"),
    (("schema_version",), True, "schema_version must be the integer 1"),
])
def test_a_bad_study_is_one_line_naming_file_and_field(tmp_path, path, value, message):
    fit_docs.write(tmp_path, _set(fit_docs.study(), path, value))
    with pytest.raises(EdgeconvError) as err:
        load_study(tmp_path)
    text = str(err.value)
    assert text.startswith(str(tmp_path / STUDY)) and message in text, text
    assert "\n" not in text


def test_a_candidate_key_twice_and_a_missing_field_are_refused(tmp_path):
    doc = fit_docs.study()
    doc["space"]["candidates"].append(dict(doc["space"]["candidates"][0]))
    fit_docs.write(tmp_path, doc)
    with pytest.raises(EdgeconvError, match="names the key 'mobilenet-alpha1-48' twice"):
        load_study(tmp_path)
    doc = fit_docs.study()
    del doc["request"]
    fit_docs.write(tmp_path, doc)
    with pytest.raises(EdgeconvError, match="request is missing"):
        load_study(tmp_path)


def test_not_json_not_a_study_folder_and_a_duplicate_key_are_one_line(tmp_path):
    with pytest.raises(EdgeconvError, match="has no study.json"):
        load_study(tmp_path)
    (tmp_path / STUDY).write_text("{")
    with pytest.raises(EdgeconvError, match="not valid JSON"):
        load_study(tmp_path)
    (tmp_path / STUDY).write_text('{"winner": null, "winner": "x/int8"}')
    with pytest.raises(EdgeconvError, match="names key 'winner' twice"):
        load_study(tmp_path)


def test_write_study_validates_first_and_writes_nothing_when_bad(tmp_path):
    with pytest.raises(EdgeconvError, match="winner names"):
        write_study(tmp_path, fit_docs.study(winner="nobody/int8"))
    assert not (tmp_path / STUDY).exists() and not list(tmp_path.iterdir())
    # a valid write replaces the previous file whole
    write_study(tmp_path, fit_docs.study())
    write_study(tmp_path, fit_docs.study(status="interrupted"))
    assert json.loads((tmp_path / STUDY).read_text())["status"] == "interrupted"
    assert [p.name for p in tmp_path.iterdir()] == [STUDY]


def test_a_path_that_leads_outside_through_a_symlink_is_refused(tmp_path):
    study = tmp_path / "study"
    (study / "trials").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", study / "trials" / "k")
    assert inside(study, "trials", "x") == study / "trials"
    with pytest.raises(EdgeconvError, match="leads outside"):
        inside(study, "trials/k", "the trial folder")


# --- the front ---------------------------------------------------------------------------

C = {n: fit_docs.candidate("mobilenet", 32, alpha=a) for n, a in
     zip("abcdefg", (1.0, 0.75, 0.5, 0.25, 0.35, 0.2, 0.3))}


def pt(name, **figures):
    return fit_docs.point(C[name], **figures)


def ids(*names, precision="int8"):
    return [f"{C[n]['key']}/{precision}" for n in names]


def test_dominated_points_leave_the_front_and_it_is_ordered_by_accuracy():
    points = [pt("a", accuracy=0.80, mid=70, ram=120_000),  # beaten by b on every figure
              pt("b", accuracy=0.90, mid=60, ram=100_000),
              pt("c", accuracy=0.85, mid=40, ram=90_000),
              pt("d", accuracy=0.85, mid=40, ram=95_000)]  # c is as good and smaller
    assert pareto_front(points) == ids("b", "c")
    assert pareto_front(list(reversed(points))) == ids("b", "c")  # stable


def test_one_better_figure_keeps_a_point_and_equal_points_are_all_on_the_front():
    points = [pt("a", accuracy=0.90, mid=60),
              pt("b", accuracy=0.80, mid=60, flash=100_000),  # only its flash is better
              pt("c", accuracy=0.90, mid=60)]  # ties a on everything
    # equal figures: in the order of their ids, whatever order they came in
    assert pareto_front(points) == sorted(ids("a", "c")) + ids("b")
    assert pareto_front(points[::-1]) == pareto_front(points)


def test_a_missing_figure_counts_as_the_worst():
    points = [pt("a", accuracy=0.90, mid=60),
              pt("b", accuracy=0.90, mid=None),  # as accurate, latency unknown: beaten
              pt("c", accuracy=None, mid=10),  # fastest, but accuracy unknown: stays
              pt("d", accuracy=0.95, mid=None)]  # most accurate: stays
    assert pareto_front(points) == ids("d", "a", "c")
    assert pareto_front([]) == []


def test_choose_the_most_accurate_that_fits_and_meets_the_request():
    points = [pt("a", accuracy=0.95, mid=150),  # too slow for 100 ms
              pt("b", accuracy=0.93, mid=80, fits=False),  # does not fit the board
              pt("c", accuracy=0.90, mid=90),
              pt("d", accuracy=0.88, mid=20)]
    assert choose(points, {"max_latency_ms": 100.0})["id"] == ids("c")[0]
    assert choose(points, {"max_latency_ms": None})["id"] == ids("a")[0]
    assert choose(points, {"max_latency_ms": 50.0})["id"] == ids("d")[0]
    assert choose(points, {"max_latency_ms": 100.0, "min_accuracy": 0.9})["id"] == ids("c")[0]
    assert choose(points, {"max_latency_ms": 100.0, "min_accuracy": 0.91}) is None
    assert choose(points, {"max_latency_ms": 10.0}) is None
    # the request may be an object with the same attributes
    request = type("Request", (), {"max_latency_ms": 50.0, "min_accuracy": None})()
    assert choose(points, request)["id"] == ids("d")[0]


def test_ties_go_to_the_lower_latency_then_the_lower_ram():
    points = [pt("a", accuracy=0.9, mid=60, ram=90_000),
              pt("b", accuracy=0.9, mid=50, ram=120_000),
              pt("c", accuracy=0.9, mid=50, ram=100_000)]
    assert choose(points, {"max_latency_ms": 100.0})["id"] == ids("c")[0]
    # an unknown latency never qualifies under a ceiling, and loses a tie without one
    points = [pt("a", accuracy=0.9, mid=None), pt("b", accuracy=0.9, mid=70)]
    assert choose(points, {"max_latency_ms": 100.0})["id"] == ids("b")[0]
    assert choose(points, {})["id"] == ids("b")[0]
    assert choose([pt("a", accuracy=0.9, mid=None)], {"max_latency_ms": 100.0}) is None


def test_why_none_names_the_nearest_miss_in_one_line():
    points = [pt("a", accuracy=0.95, mid=300), pt("b", accuracy=0.90, mid=120)]
    text = why_none(points, {"max_latency_ms": 100.0})
    assert text == ("no finalist meets the request; the nearest, mobilenet alpha 0.75 at"
                    " 32x32, int8, ~120 ms [96-144] > 100 ms")
    text = why_none([pt("a", accuracy=0.80, mid=50), pt("b", accuracy=0.84, mid=90)],
                    {"max_latency_ms": 100.0, "min_accuracy": 0.9})
    assert "the nearest, mobilenet alpha 0.75 at 32x32, int8, 84.0% < 90.0%" in text
    text = why_none([pt("a", fits=False), pt("b", fits=False, accuracy=None)], {})
    assert text.endswith("the nearest, mobilenet alpha 1 at 32x32, int8, does not fit the"
                         " board's RAM or flash")
    assert "no finalist" in why_none([], {"max_latency_ms": 100.0})
    assert "\n" not in text


def test_the_verdict_line_is_the_issues():
    c = fit_docs.candidate("mobilenet", 64, alpha=0.35)
    p = fit_docs.point(c, accuracy=0.881, mid=62.0, ram=118 * 1024 + 300, flash=301 * 1024)
    p.update(accuracy_low=0.874, accuracy_high=0.887,
             latency={"low": 50.0, "mid": 62.0, "high": 75.0, "basis": "b"})
    assert verdict_line(p, "nucleo-l4r5zi") == (
        "mobilenet alpha 0.35 at 64x64, int8: 88.1% [87.4, 88.7], ~62 ms [50-75] on"
        " nucleo-l4r5zi, 118 KiB RAM, 301 KiB flash")


def test_the_verdict_says_what_is_missing_and_how_a_latency_was_obtained():
    c = fit_docs.candidate("gap-mnist", 28)
    p = fit_docs.point(c, "int16x8", accuracy=0.9, mid=None, ram=None, flash=None)
    p.update(accuracy_low=None, accuracy_high=None)
    assert verdict_line(p, "stm32h7") == ("gap-mnist at 28x28, int16x8: 90.0%, latency unknown"
                                          " on stm32h7, RAM unknown, flash unknown")
    p = fit_docs.point(c, accuracy=None, mid=0.41, kind="measured on this host",
                       ram=6 * 1024, flash=None)
    assert verdict_line(p, "cpu") == ("gap-mnist at 28x28, int8: accuracy unknown, 0.41 ms on"
                                      " cpu, measured on this host, 6.0 KiB RAM, flash unknown")
    p = fit_docs.point(c, mid=12.25, kind="measured on the device")
    assert "12 ms on rpi4, measured on the device, " in verdict_line(p, "rpi4")
    p = fit_docs.point(c, mid=4.66, kind="emulated")
    assert "~4.7 ms [3.7-5.6] on nrf52840" in verdict_line(p, "nrf52840")


def test_a_studys_answer_says_why_there_is_no_winner():
    from edgeconv.fit.front import study_answer

    doc = fit_docs.study()
    assert study_answer(doc) == verdict_line(doc["finalists"][1], fit_docs.TARGET)
    assert study_answer({**doc, "verdict": "as\nrecorded"}) == "as recorded"  # one line
    none = {**doc, "winner": None, "finalists": [], "front": []}
    assert study_answer({**none, "status": "nothing-fits"}) == (
        "nothing in the space fits nucleo-l4r5zi: every point was pruned before training")
    assert study_answer({**none, "status": "interrupted"}).startswith(
        "none yet: the study is interrupted (0 finalist(s) so far;")
    assert study_answer({**doc, "winner": None, "request": {
        **doc["request"], "max_latency_ms": 10.0}}).startswith(
        "no finalist meets the request; the nearest, mobilenet alpha 0.25 at 48x48, int8,")
