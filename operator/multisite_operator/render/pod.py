"""The pod template every workload of a project shares: one place for image, secrets and pod settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import GROUP, KIND, VERSION, JobSpec, MultiSiteProjectSpec
from ..obj import Obj
from ..rotation import SecretDigests

# The 'restricted' Pod Security Standard, so the pods are admitted in namespaces that enforce it.
DEFAULT_POD_SECURITY: Obj = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
DEFAULT_CONTAINER_SECURITY: Obj = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@dataclass(frozen=True)
class Owner:
    """The MultiSiteProject that owns the children; uid is None when rendering without a cluster.

    `digests` are of the Secret values the pods read (rotation.py), known only to the operator (None for
    `render`): they go into the pod templates so that a rotated Secret rolls the pods and renames the Jobs.
    """

    name: str
    namespace: str | None
    uid: str | None = None
    digests: SecretDigests | None = None

    def pod_annotations(self) -> dict[str, str]:
        return self.digests.pod_annotations() if self.digests else {}

    def job_annotations(self) -> dict[str, str]:
        return self.digests.job_annotations() if self.digests else {}


def metadata(owner: Owner, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": labels}
    if owner.namespace:
        meta["namespace"] = owner.namespace
    if annotations:
        meta["annotations"] = annotations
    if owner.uid:
        # Garbage collection removes the children with the project; blockOwnerDeletion keeps foreground deletes
        # ordered. Secrets and PVCs are never given this reference, so they are never collected.
        meta["ownerReferences"] = [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return meta


PRESTOP_SLEEP_SECONDS = 5  # within the default 30 s grace period; endpoint updates reach controllers in < 1 s


def container(
    spec: MultiSiteProjectSpec,
    *,
    name: str,
    image: str,
    env: list[Obj],
    command: list[str] | None,
    args: list[str] | None = None,
    resources: Obj | None = None,
    web: bool = False,
) -> Obj:
    c: Obj = {
        "name": name,
        "image": image,
        "env": env,
        "securityContext": spec.security_context or DEFAULT_CONTAINER_SECURITY,
    }
    if spec.image_pull_policy:
        c["imagePullPolicy"] = spec.image_pull_policy
    if command:
        c["command"] = list(command)
    if args:
        c["args"] = list(args)
    if spec.env_from:
        c["envFrom"] = list(spec.env_from)
    if resources or spec.resources:
        c["resources"] = resources or spec.resources
    if web:
        c["ports"] = [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}]
        # A web process that dies at start-up leaves the tail of its output in lastState.terminated.message,
        # which the operator reports as Ready=False CrashLoop (pods.py); Django writes no termination-log file.
        c["terminationMessagePolicy"] = "FallbackToLogsOnError"
        # A TCP probe: an HTTP probe would reach Django with the pod IP as Host, which ALLOWED_HOSTS rejects.
        c["readinessProbe"] = {"tcpSocket": {"port": "http"}, "periodSeconds": 10}
        # A pod being replaced keeps serving while the ingress controller learns it is terminating: the kubelet
        # sends SIGTERM only after this sleep (a built-in action, no `sleep` binary needed in the image). Without
        # it the process exits at once and requests routed to it meanwhile get 502 during every roll.
        c["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}
    return c


def pod_spec(spec: MultiSiteProjectSpec, containers: list[Obj], *, restart_policy: str | None = None) -> Obj:
    pod: Obj = {
        "containers": containers,
        "securityContext": spec.pod_security_context or DEFAULT_POD_SECURITY,
        "enableServiceLinks": False,
    }
    if restart_policy:
        pod["restartPolicy"] = restart_policy
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = list(spec.image_pull_secrets)
    if spec.service_account_name:
        pod["serviceAccountName"] = spec.service_account_name
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = list(spec.tolerations)
    if spec.affinity:
        pod["affinity"] = spec.affinity
    return pod


def template_metadata(
    spec: MultiSiteProjectSpec, labels: dict[str, str], job: JobSpec | None = None, annotations: dict[str, str] | None = None
) -> Obj:
    all_labels = {**spec.pod_labels, **(job.pod_labels if job else {}), **labels}
    all_annotations = {**spec.pod_annotations, **(job.pod_annotations if job else {}), **(annotations or {})}
    meta: Obj = {"labels": all_labels}
    if all_annotations:
        meta["annotations"] = all_annotations
    return meta
