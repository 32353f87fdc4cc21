"""What counts as 'nothing to change' when comparing a desired child with the server's copy."""

from multisite_operator.apply import covers
from multisite_operator.redact import redact


def test_server_defaults_do_not_count_as_changes():
    want = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "a"}]}}}}
    have = {"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
                     "template": {"spec": {"containers": [{"name": "web", "image": "a", "terminationMessagePath": "/x"}]}}}}
    assert covers(have, want)


def test_a_changed_or_added_list_entry_counts():
    want = {"env": [{"name": "A", "value": "1"}]}
    assert not covers({"env": [{"name": "A", "value": "2"}]}, want)
    assert not covers({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}]}, want)


def test_equal_quantities_are_equal():
    assert covers({"cpu": "500m", "memory": "1Gi"}, {"cpu": "0.5", "memory": "1024Mi"})
    assert not covers({"cpu": "500m"}, {"cpu": "1"})


def test_redact_removes_secret_values_and_url_passwords():
    text = "could not connect to postgres://app:s3cr3t-pw@db:5432/app; token abcdEFGH"
    out = redact(text, ["abcdEFGH"])
    assert "s3cr3t-pw" not in out and "abcdEFGH" not in out
    assert "postgres://app:[redacted]@db:5432/app" in out


def test_a_remembered_comparison_holds_only_for_the_same_desired_object_and_observed_version(monkeypatch):
    from multisite_operator import apply

    want = {"kind": "Ingress", "metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example"}]}}
    have = {"kind": "Ingress", "metadata": {"name": "web", "resourceVersion": "7"},
            "spec": {"rules": [{"host": "a.example"}]}}
    memo: dict = {}
    compared = []
    real = apply.needs_apply
    monkeypatch.setattr(apply, "needs_apply", lambda d, o: compared.append(o) or real(d, o))
    observed = {("Ingress", "web"): have}
    assert apply.to_apply([want], observed, memo) == [] and len(compared) == 1
    assert apply.to_apply([want], observed, memo) == [] and len(compared) == 1  # same pair: remembered
    # Someone edited the Ingress (a new resourceVersion): compared again, and the change is seen.
    edited = {**have, "metadata": {"name": "web", "resourceVersion": "8"}, "spec": {"rules": [{"host": "b.example"}]}}
    assert apply.to_apply([want], {("Ingress", "web"): edited}, memo) == [want] and len(compared) == 2
    # Another desired object (a new generation) with the old version: compared again.
    other = {**want, "spec": {"rules": [{"host": "b.example"}]}}
    assert apply.to_apply([other], {("Ingress", "web"): edited}, memo) == [] and len(compared) == 3
    # A Job that exists is never applied again; a missing child always is.
    job = {"kind": "Job", "metadata": {"name": "j"}, "spec": {"x": 1}}
    assert apply.to_apply([job], {("Job", "j"): {"kind": "Job", "metadata": {"name": "j"}, "spec": {"x": 2}}}, memo) == []
    assert apply.to_apply([job], {}, memo) == [job]
