"""The kopf layer registers into the registry it is given: no module global, so two operators (or a test and an
operator) never share handlers or a controller."""

from __future__ import annotations

import kopf

from multisite_operator.controller import Controller
from multisite_operator.handlers import INDEXES, register


def selectors(registry: kopf.OperatorRegistry) -> set[str]:
    return {str(h.selector) for sub in (registry._indexing, registry._watching) for h in sub.get_all_handlers()}


def test_handlers_go_into_the_given_registry_only():
    mine = kopf.OperatorRegistry()
    register(mine, Controller())
    watched = selectors(mine)
    # projects, Deployments, Services, Ingresses, Jobs, Pods, HTTPRoutes, Gateways, Certificates
    assert len(watched) == 9, watched
    assert selectors(kopf.get_default_registry()) == set()
    # kopf hands each index to handlers as a keyword named by the index handler's id: the controller reads them so.
    assert sorted(h.id for h in mine._indexing.get_all_handlers()) == sorted(INDEXES)
    # Without a login handler of its own, an operator on a fresh registry cannot authenticate at all.
    assert [h.id for h in mine._activities.get_all_handlers() if h.activity.value == "authentication"] == [
        "register.<locals>.login"]
