"""The one Ready summary: the first problem wins with its reason and message; Degraded follows the first failure."""

from __future__ import annotations

from multisite_operator import conditions as cond

ROLLING = cond.Problem("RollingOut", "Deployment example-web is not available yet")
POPULATING = cond.Problem("Populating", "waiting for the populate Job")
FAILED = cond.Problem("PopulateFailed", "the populate Job failed; see Populated", degraded="the populate Job failed")
PULL = cond.Problem("ImagePullFailed", "image x cannot be pulled", degraded="image x cannot be pulled")


def brief(c: cond.Condition) -> tuple[str, str, str]:
    return c["status"], c["reason"], c["message"]


def test_no_problem_is_ready_and_not_degraded():
    ready, degraded = cond.summary([], "serving 5 domains of 3 sites")
    assert brief(ready) == ("True", "Ready", "serving 5 domains of 3 sites")
    assert brief(degraded) == ("False", "AsExpected", "no failure")


def test_first_problem_wins_and_work_in_progress_is_not_degraded():
    ready, degraded = cond.summary([ROLLING, POPULATING], "x")
    assert brief(ready) == ("False", "RollingOut", ROLLING.message)
    assert degraded["status"] == "False"


def test_a_failure_sets_degraded_with_its_own_message():
    ready, degraded = cond.summary([FAILED, ROLLING], "x")
    assert brief(ready) == ("False", "PopulateFailed", FAILED.message)
    assert brief(degraded) == ("True", "PopulateFailed", "the populate Job failed")


def test_switching_keeps_a_failure_reason_and_replaces_progress():
    note = "switching to shared: the previous mode's workloads serve until the shared Deployment are Available"
    ready, _ = cond.summary([FAILED], "x", switching=note)
    assert ready["reason"] == "PopulateFailed" and ready["message"].endswith(note)
    ready, degraded = cond.summary([ROLLING], "x", switching=note)
    assert brief(ready) == ("False", "SwitchingMode", note) and degraded["status"] == "False"


def test_an_image_pull_failure_names_what_to_fix_only_when_not_ready_anyway():
    ready, degraded = cond.summary([ROLLING], "x", pulling=PULL)
    assert ready["reason"] == degraded["reason"] == "ImagePullFailed" and degraded["status"] == "True"
    ready, degraded = cond.summary([], "x", pulling=PULL)
    assert ready["status"] == "True" and degraded["status"] == "False"


def test_merge_keeps_transition_time_while_status_stays():
    first = cond.merge([], [cond.condition("Ready", False, "RollingOut", "a")], 1)
    first[0]["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    again = cond.merge(first, [cond.condition("Ready", False, "Populating", "b")], 2)
    assert again[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z" and again[0]["observedGeneration"] == 2
    flipped = cond.merge(first, [cond.condition("Ready", True, "Ready", "c")], 2)
    assert flipped[0]["lastTransitionTime"] != "2026-01-01T00:00:00Z"


def test_events_are_bad_news_and_good_news_that_ends_something_else():
    first_ready, first_degraded = cond.summary([POPULATING], "x")
    progressing = cond.condition(cond.PROGRESSING, True, "Populating", "populating")
    new = [first_ready, first_degraded, progressing]
    # A new project: progress and a first good state are no news (the Job's own Event says what started).
    assert cond.worth_an_event([], new) == []
    ready, degraded = cond.summary([], "serving 3 domains of 3 sites")
    done = [ready, degraded, cond.condition(cond.PROGRESSING, False, "Complete", "every child is up to date")]
    assert [brief(c) for c in cond.worth_an_event(new, done)] == [("True", "Ready", "serving 3 domains of 3 sites")]
    # A failure is always news, and so is its end.
    failed = list(cond.summary([FAILED], "x"))
    assert [c["reason"] for c in cond.worth_an_event(done, failed)] == ["PopulateFailed", "PopulateFailed"]
    assert [(c["type"], c["reason"]) for c in cond.worth_an_event(failed, done[:2])] == [
        ("Ready", "Ready"), ("Degraded", "AsExpected")]
    # Unchanged conditions: nothing.
    assert cond.worth_an_event(done, done) == []


def test_only_work_under_way_counts_as_progress():
    migrating = [cond.condition(cond.READY, False, cond.R_MIGRATING, "m"),
                 cond.condition(cond.MIGRATED, "Unknown", cond.R_MIGRATING, "m"),
                 cond.condition(cond.DEGRADED, False, cond.R_AS_EXPECTED, "")]
    assert cond.only_progress(migrating)
    assert not cond.only_progress([cond.condition(cond.READY, True, cond.R_READY, "")] + migrating[1:])
    assert not cond.only_progress([cond.condition(cond.READY, False, cond.R_MIGRATION_FAILED, "x")] + migrating[1:])
    assert not cond.only_progress(migrating + [cond.condition(cond.POPULATED, False, cond.R_POPULATE_FAILED, "x")])
