#!/usr/bin/env python3
"""Kubernetes API server emulator for k8srule tests.

Standard library only (Python 3.11). Speaks enough of the real REST API
(discovery, list/get/watch with pagination and selectors, create/replace/
patch/delete, Status errors) for the Rust `kube` client to work against it
on plain http://127.0.0.1:PORT without authentication.

See README.md next to this file for the CLI and the test control endpoints.
"""

import argparse
import base64
import bisect
import copy
import json
import os
import select
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
DEFAULT_USER = "system:serviceaccount:default:k8srule"


def now_ts():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# Resource registry
# --------------------------------------------------------------------------


class Res:
    def __init__(self, group, version, plural, singular, kind, namespaced, short=(), storage=None,
                 subresources=("status",)):
        self.group = group
        self.version = version
        self.plural = plural
        self.singular = singular
        self.kind = kind
        self.namespaced = namespaced
        self.short = list(short)
        self.gv = f"{group}/{version}" if group else version
        # Storage id: core v1 events and events.k8s.io/v1 events share storage,
        # exactly like the real API server (one etcd prefix, two API versions).
        self.storage = storage or (f"{group}/{plural}" if group else plural)
        self.subresources = list(subresources)

    def list_kind(self):
        return self.kind + "List"


RESOURCES = [
    Res("", "v1", "pods", "pod", "Pod", True, ["po"], subresources=("status", "log")),
    Res("", "v1", "events", "event", "Event", True, ["ev"], subresources=()),
    Res("", "v1", "nodes", "node", "Node", False, ["no"]),
    Res("", "v1", "namespaces", "namespace", "Namespace", False, ["ns"]),
    Res("", "v1", "services", "service", "Service", True, ["svc"]),
    Res("", "v1", "configmaps", "configmap", "ConfigMap", True, ["cm"], subresources=()),
    Res("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", True, ["pvc"]),
    Res("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", False, ["pv"]),
    Res("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ["sa"], subresources=()),
    Res("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", True, ["rc"]),
    Res("apps", "v1", "deployments", "deployment", "Deployment", True, ["deploy"]),
    Res("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ["rs"]),
    Res("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ["ds"]),
    Res("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ["sts"]),
    Res("batch", "v1", "jobs", "job", "Job", True, []),
    Res("batch", "v1", "cronjobs", "cronjob", "CronJob", True, ["cj"]),
    Res("events.k8s.io", "v1", "events", "event", "Event", True, ["ev"], storage="events", subresources=()),
]
GROUP_ORDER = ["apps", "batch", "events.k8s.io"]
BY_PATH = {(r.gv, r.plural): r for r in RESOURCES}
BY_KIND = {(r.gv, r.kind): r for r in RESOURCES}
GROUP_VERSIONS = {r.gv for r in RESOURCES}
# Canonical (storage) form of every storage id: the first resource registered for it.
CANONICAL = {}
for _r in RESOURCES:
    CANONICAL.setdefault(_r.storage, _r)


def res_for_kind(kind, api_version=None):
    if api_version:
        return BY_KIND.get((api_version, kind))
    for r in RESOURCES:
        if r.kind == kind:
            return r
    return None


# --------------------------------------------------------------------------
# Event conversion core/v1 <-> events.k8s.io/v1
# --------------------------------------------------------------------------

CORE_TO_NEW = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
NEW_TO_CORE = {v: k for k, v in CORE_TO_NEW.items()}


def _rename(obj, table, api_version, copied=copy.deepcopy):
    out = {"kind": "Event", "apiVersion": api_version}
    for k, v in obj.items():
        if k in ("kind", "apiVersion"):
            continue
        out[table.get(k, k)] = copied(v)
    return out


def _same(v):
    return v


def to_storage(res, obj, fresh=False):
    """API form (as received for `res`) -> canonical storage form. A `fresh`
    object (just parsed, held by no one else) is not copied: loading a large
    data set takes seconds instead of minutes."""
    if res.storage == "events" and res.group == "events.k8s.io":
        return _rename(obj, NEW_TO_CORE, "v1")
    if not fresh:
        obj = copy.deepcopy(obj)
    obj["apiVersion"] = res.gv
    obj["kind"] = res.kind
    return obj


def from_storage(res, obj, deep=True):
    """Canonical storage form -> API form for `res` (always a fresh copy; only
    of the top level when not `deep`, for an answer that is serialized at once)."""
    copied = copy.deepcopy if deep else _same
    if res.storage == "events":
        if res.group == "events.k8s.io":
            out = _rename(obj, CORE_TO_NEW, "events.k8s.io/v1", copied)
            # Go serialises these non-omitempty time fields as null.
            for k in ("eventTime", "deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
                out.setdefault(k, None)
            return out
        out = copy.deepcopy(obj) if deep else dict(obj)
        out["apiVersion"], out["kind"] = "v1", "Event"
        out.setdefault("involvedObject", {})
        out.setdefault("source", {})
        for k in ("firstTimestamp", "lastTimestamp", "eventTime"):
            out.setdefault(k, None)
        out.setdefault("reportingComponent", "")
        out.setdefault("reportingInstance", "")
        return out
    out = {"kind": res.kind, "apiVersion": res.gv}
    out.update((k, copied(v)) for k, v in obj.items() if k not in ("kind", "apiVersion"))
    return out


# --------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------


class SelectorError(Exception):
    pass


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(s):
    """Returns a list of (op, key, values). Supports =, ==, !=, in, notin, key, !key."""
    reqs = []
    for term in _split_top(s or ""):
        low = term
        if " notin " in low or " in " in low:
            op = "notin" if " notin " in low else "in"
            key, _, rest = low.partition(f" {op} ")
            rest = rest.strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise SelectorError(f"unable to parse requirement: found '{rest}', expected: '('")
            vals = [v.strip() for v in rest[1:-1].split(",") if v.strip()]
            reqs.append((op, key.strip(), vals))
        elif "!=" in term:
            k, v = term.split("!=", 1)
            reqs.append(("!=", k.strip(), [v.strip()]))
        elif "==" in term:
            k, v = term.split("==", 1)
            reqs.append(("=", k.strip(), [v.strip()]))
        elif "=" in term:
            k, v = term.split("=", 1)
            reqs.append(("=", k.strip(), [v.strip()]))
        elif term.startswith("!"):
            reqs.append(("!exists", term[1:].strip(), []))
        else:
            if any(c in term for c in " ()<>"):
                raise SelectorError(f"unable to parse requirement: {term!r}")
            reqs.append(("exists", term, []))
    for _, k, _ in reqs:
        if not k:
            raise SelectorError("unable to parse requirement: empty key")
    return reqs


def label_matches(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for op, k, vals in reqs:
        has = k in labels
        v = labels.get(k)
        if op == "=" and not (has and v == vals[0]):
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
FIELDS = {
    "pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "replicationcontrollers": {"status.replicas"},
    "apps/replicasets": {"status.replicas"},
    "batch/jobs": {"status.successful"},
}
# Field names used through events.k8s.io/v1 map onto the shared core storage.
NEW_EVENT_FIELD_ALIASES = {"reportingController": "reportingComponent", "deprecatedSource": "source"}
DEFAULT_FIELD_VALUES = {"spec.hostNetwork": "false", "spec.unschedulable": "false"}


def parse_field_selector(res, s):
    reqs = []
    allowed = COMMON_FIELDS | FIELDS.get(res.storage, set())
    for term in _split_top(s or ""):
        if "!=" in term:
            k, v = term.split("!=", 1)
            op = "!="
        elif "==" in term:
            k, v = term.split("==", 1)
            op = "="
        elif "=" in term:
            k, v = term.split("=", 1)
            op = "="
        else:
            raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")
        k, v = k.strip(), v.strip()
        if res.storage == "events" and res.group == "events.k8s.io":
            if k.startswith("regarding."):
                k = "involvedObject." + k[len("regarding."):]
            k = NEW_EVENT_FIELD_ALIASES.get(k, k)
        if k not in allowed:
            raise SelectorError(f"field label not supported: {k}")
        reqs.append((op, k, v))
    return reqs


def field_value(obj, path):
    if path == "source":
        path = "source.component"
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return DEFAULT_FIELD_VALUES.get(path, "")
        cur = cur[part]
    if cur is None:
        return DEFAULT_FIELD_VALUES.get(path, "")
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matches(reqs, obj):
    for op, k, v in reqs:
        actual = field_value(obj, k)
        if op == "=" and actual != v:
            return False
        if op == "!=" and actual == v:
            return False
    return True


# --------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------


def obj_key(res, ns, name):
    return f"{ns}/{name}" if res.namespaced else name


def in_scope(key, ns):
    return ns is None or key.startswith(ns + "/")


class Store:
    def __init__(self):
        self.cond = threading.Condition(threading.RLock())
        self.rv = 0
        self.compacted = 0  # watches / continues / exact lists below this RV get 410
        self.objects = {}  # storage id -> {key: canonical object}
        self.log = []  # (rv, storage, key, type, obj, prev)
        self.load_entries = 0
        self.logs = {}  # (ns, pod, container or "", previous) -> text
        # ((storage, rv, ns), its objects, their keys sorted): the pages of one list copy and sort once
        self.listed = (None, {}, [])

    def bucket(self, storage):
        return self.objects.setdefault(storage, {})

    # -- loading ----------------------------------------------------------
    def load(self, objs):
        """objs: list of (res, canonical obj). RVs present in the data are kept."""
        max_rv = 0
        for _, o in objs:
            rv = (o.get("metadata") or {}).get("resourceVersion")
            if isinstance(rv, str) and rv.isdigit():
                max_rv = max(max_rv, int(rv))
        self.rv = max_rv
        namespaces = {"default"}
        loaded = now_ts()
        for res, o in objs:
            md = o.setdefault("metadata", {})
            if res.namespaced:
                md.setdefault("namespace", "default")
                namespaces.add(md["namespace"])
        present = {o["metadata"].get("name") for r, o in objs if r.plural == "namespaces"}
        ns_res = BY_PATH[("v1", "namespaces")]
        for ns in sorted(namespaces - present):
            objs.append((ns_res, {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}))
        for res, o in objs:
            md = o["metadata"]
            if not md.get("name"):
                raise ValueError(f"object without metadata.name: {json.dumps(o)[:200]}")
            rv = md.get("resourceVersion")
            if not (isinstance(rv, str) and rv.isdigit()):
                self.rv += 1
                md["resourceVersion"] = str(self.rv)
            if "uid" not in md:
                md["uid"] = str(uuid.uuid4())
            md.setdefault("creationTimestamp", loaded)
            key = obj_key(res, md.get("namespace"), md["name"])
            b = self.bucket(res.storage)
            prev = b.get(key)
            b[key] = o
            self.log.append((int(md["resourceVersion"]), res.storage, key,
                             "MODIFIED" if prev else "ADDED", o, prev))
        self.load_entries = len(self.log)
        # History from before start-up counts as compacted.
        self.compacted = self.rv

    # -- mutation ---------------------------------------------------------
    def put(self, res, obj):
        """Create or replace canonical object. Returns (type, stored)."""
        with self.cond:
            obj = copy.deepcopy(obj)
            md = obj.setdefault("metadata", {})
            key = obj_key(res, md.get("namespace"), md["name"])
            b = self.bucket(res.storage)
            prev = b.get(key)
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            if prev:
                md.setdefault("uid", prev["metadata"].get("uid"))
                md.setdefault("creationTimestamp", prev["metadata"].get("creationTimestamp"))
            else:
                md.setdefault("uid", str(uuid.uuid4()))
                md.setdefault("creationTimestamp", now_ts())
            typ = "MODIFIED" if prev else "ADDED"
            b[key] = obj
            self.log.append((self.rv, res.storage, key, typ, obj, prev))
            self.cond.notify_all()
            return typ, obj

    def delete(self, res, key):
        with self.cond:
            b = self.bucket(res.storage)
            prev = b.pop(key, None)
            if prev is None:
                return None
            self.rv += 1
            gone = copy.deepcopy(prev)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self.log.append((self.rv, res.storage, key, "DELETED", gone, prev))
            self.cond.notify_all()
            return gone

    def compact(self, rv=None):
        with self.cond:
            self.compacted = max(self.compacted, min(self.rv, rv if rv is not None else self.rv))
            return self.compacted

    # -- reads ------------------------------------------------------------
    def get(self, res, key):
        with self.cond:
            return self.bucket(res.storage).get(key)

    def state_at(self, storage, rv):
        """Objects of `storage` as of resourceVersion `rv` (rv >= compacted)."""
        with self.cond:
            if rv >= self.rv:
                return dict(self.bucket(storage))
            state = {}
            for i, (erv, st, key, typ, obj, _prev) in enumerate(self.log):
                if i >= self.load_entries and erv > rv:
                    break
                if st != storage:
                    continue
                if typ == "DELETED":
                    state.pop(key, None)
                else:
                    state[key] = obj
            return state


# --------------------------------------------------------------------------
# Continue tokens (same shape as the real apiserver's)
# --------------------------------------------------------------------------


def encode_continue(rv, start):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(tok):
    try:
        pad = "=" * (-len(tok) % 4)
        data = json.loads(base64.urlsafe_b64decode(tok + pad).decode())
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        rv, start = data["rv"], data["start"]
        if not isinstance(rv, int) or rv <= 0 or not isinstance(start, str):
            raise ValueError("invalid continue token")
        return rv, start
    except Exception as e:  # noqa: BLE001
        raise ValueError(str(e) or "invalid continue token")


# --------------------------------------------------------------------------
# Status objects
# --------------------------------------------------------------------------

REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 422: "Invalid", 500: "InternalError", 504: "Timeout"}


def status_obj(code, message, reason=None, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason or REASONS.get(code, "")}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


class ApiError(Exception):
    def __init__(self, code, message, reason=None, details=None):
        super().__init__(message)
        self.status = status_obj(code, message, reason, details)
        self.code = code


def res_details(res, name=None):
    d = {}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def qualified(res):
    return f"{res.plural}.{res.group}" if res.group else res.plural


def not_found(res, name):
    return ApiError(404, f'{qualified(res)} "{name}" not found', "NotFound", res_details(res, name))


# --------------------------------------------------------------------------
# Patching
# --------------------------------------------------------------------------


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue  # strategic-merge directives: ignored
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ApiError(400, "json patch must be a list of operations")
    for op in ops:
        parts = _ptr(op.get("path", ""))
        kind = op.get("op")
        if not parts:
            raise ApiError(422, "patching the document root is not supported")
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.get(p)
            if parent is None:
                raise ApiError(422, f"doc is missing path: {op.get('path')}")
        last = parts[-1]
        try:
            if kind in ("add", "replace"):
                val = copy.deepcopy(op.get("value"))
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(val)
                    elif kind == "add":
                        parent.insert(int(last), val)
                    else:
                        parent[int(last)] = val
                else:
                    if kind == "replace" and last not in parent:
                        raise ApiError(422, f"replace operation does not apply: doc is missing key: {op.get('path')}")
                    parent[last] = val
            elif kind == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif kind == "test":
                cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
                if cur != op.get("value"):
                    raise ApiError(422, f"testing value {op.get('path')} failed")
            else:
                raise ApiError(422, f"unsupported json patch op {kind!r}")
        except (KeyError, IndexError, ValueError):
            raise ApiError(422, f"doc is missing path: {op.get('path')}")
    return doc


# --------------------------------------------------------------------------
# Discovery documents
# --------------------------------------------------------------------------

VERSION_INFO = {
    "major": "1", "minor": "30", "gitVersion": "v1.30.0",
    "gitCommit": "7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a", "gitTreeState": "clean",
    "buildDate": "2024-04-17T17:27:03Z", "goVersion": "go1.22.2", "compiler": "gc",
    "platform": "linux/amd64",
}


def resource_list(gv):
    out = []
    for r in RESOURCES:
        if r.gv != gv:
            continue
        e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
             "kind": r.kind, "verbs": ALL_VERBS}
        if r.short:
            e["shortNames"] = r.short
        out.append(e)
        for sub in r.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            out.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                        "kind": "Pod" if sub == "log" else r.kind, "verbs": verbs})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def api_group(name):
    gv = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def aggregated(core, disc_version):
    groups = [""] if core else GROUP_ORDER
    items = []
    for g in groups:
        resources = []
        for r in RESOURCES:
            if r.group != g:
                continue
            e = {"resource": r.plural, "responseKind": {"group": g, "version": r.version, "kind": r.kind},
                 "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                 "verbs": ALL_VERBS}
            if r.short:
                e["shortNames"] = r.short
            if r.subresources:
                e["subresources"] = [
                    {"subresource": s,
                     "responseKind": {"group": g, "version": r.version, "kind": r.kind} if s != "log" else {
                         "group": "", "version": "", "kind": "string"},
                     "verbs": ["get"] if s == "log" else ["get", "patch", "update"]}
                    for s in r.subresources]
            resources.append(e)
        items.append({"metadata": {"name": g, "creationTimestamp": None},
                      "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{disc_version}",
            "metadata": {}, "items": items}


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------


class Config:
    forbid = set()
    page_size_max = 0
    user = DEFAULT_USER
    watch_timeout = 30.0
    bookmark_interval = 5.0
    bare_list_items = False
    list_delay = 0.0
    verbose = False


STORE = Store()
REQUESTS = []
REQ_LOCK = threading.Lock()


def forbidden_match(res, sub=None):
    f = Config.forbid
    return (res.plural in f or qualified(res) in f or f"{res.group}/{res.plural}" in f
            or f"{res.gv}/{res.plural}" in f or (sub is not None and f"{res.plural}/{sub}" in f))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body are written apart: with Nagle's algorithm the body waits for the
    # client's delayed ACK (40 ms) on a kept-alive connection, which a list of many pages pays each page
    disable_nagle_algorithm = True
    server_version = "kube-api-emulator/1.0"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if Config.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # ---- plumbing ---------------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_json(self, code, obj, content_type="application/json"):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return code

    def send_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return code

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        self.params = parse_qs(url.query, keep_blank_values=True)
        try:
            body = self.read_body()
        except Exception:  # noqa: BLE001
            self.close_connection = True
            return
        if path.startswith("/_"):
            try:
                self.control(method, path, body)
            except ApiError as e:
                self.send_json(e.code, e.status)
            return
        entry = {"method": method, "path": path, "query": url.query,
                 "params": {k: (v[-1] if len(v) == 1 else v) for k, v in self.params.items()},
                 "time": time.time(), "status": None}
        if method in ("POST", "PUT", "PATCH"):
            entry["contentType"] = self.headers.get("Content-Type")
            try:
                entry["body"] = json.loads(body) if body else None
            except ValueError:
                entry["body"] = body.decode("utf-8", "replace")
        with REQ_LOCK:
            REQUESTS.append(entry)
        try:
            code = self.api(method, path, body)
        except ApiError as e:
            code = self.send_json(e.code, e.status)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            code = 499
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            code = self.send_json(500, status_obj(500, f"emulator error: {e}", "InternalError"))
        entry["status"] = code

    def p(self, name, default=None):
        v = self.params.get(name)
        return v[-1] if v else default

    def flag(self, name):
        return (self.p(name) or "").lower() in ("1", "true")

    # ---- control endpoints -------------------------------------------------
    def control(self, method, path, body):
        def load_body():
            try:
                return json.loads(body or b"null")
            except ValueError as e:
                raise ApiError(400, f"invalid JSON body: {e}")

        if path == "/_requests":
            if method == "GET":
                with REQ_LOCK:
                    return self.send_json(200, list(REQUESTS))
            if method == "DELETE":
                with REQ_LOCK:
                    REQUESTS.clear()
                return self.send_json(200, {"cleared": True})
        elif path == "/_objects" and method == "GET":
            with STORE.cond:
                out = [from_storage(CANONICAL[s], o) for s in sorted(STORE.objects)
                       for _, o in sorted(STORE.objects[s].items())]
                return self.send_json(200, {"resourceVersion": str(STORE.rv), "items": out})
        elif path == "/_objects" and method == "POST":
            doc = load_body()
            objs = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind", "").endswith("List") \
                else [doc]
            results = []
            for o in objs:
                res = self.res_of(o)
                md = o.setdefault("metadata", {})
                if not md.get("name"):
                    raise ApiError(400, "metadata.name is required")
                if res.namespaced:
                    md.setdefault("namespace", "default")
                else:
                    md.pop("namespace", None)
                md.pop("resourceVersion", None)
                typ, stored = STORE.put(res, to_storage(res, o))
                out = from_storage(res, stored)
                results.append({"type": typ, "object": out})
            if len(objs) == 1 and not (isinstance(doc, dict) and doc.get("kind", "").endswith("List")):
                return self.send_json(200, results[0]["object"])
            return self.send_json(200, {"resourceVersion": str(STORE.rv), "results": results})
        elif path == "/_delete" and method == "POST":
            doc = load_body() or {}
            res = None
            if doc.get("resource"):
                res = next((r for r in RESOURCES if r.plural == doc["resource"]), None)
            elif doc.get("kind"):
                res = res_for_kind(doc["kind"], doc.get("apiVersion"))
            if res is None:
                raise ApiError(400, f"unknown kind/resource in {doc}")
            key = obj_key(res, doc.get("namespace") or "default", doc.get("name", ""))
            gone = STORE.delete(res, key)
            if gone is None:
                raise not_found(res, doc.get("name", ""))
            return self.send_json(200, from_storage(res, gone))
        elif path == "/_compact" and method == "POST":
            doc = load_body() or {}
            rv = doc.get("resourceVersion")
            c = STORE.compact(int(rv) if rv is not None else None)
            return self.send_json(200, {"compacted": str(c), "resourceVersion": str(STORE.rv)})
        elif path == "/_forbid" and method in ("GET", "POST"):
            if method == "POST":
                Config.forbid = set((load_body() or {}).get("resources", []))
            return self.send_json(200, {"resources": sorted(Config.forbid)})
        elif path == "/_logs" and method == "POST":
            doc = load_body() or {}
            k = (doc.get("namespace") or "default", doc["name"], doc.get("container") or "",
                 bool(doc.get("previous")))
            STORE.logs[k] = doc.get("text", "")
            return self.send_json(200, {"ok": True})
        elif path == "/_state" and method == "GET":
            return self.send_json(200, {"resourceVersion": str(STORE.rv), "compacted": str(STORE.compacted),
                                        "forbid": sorted(Config.forbid)})
        raise ApiError(404, f"no control endpoint {method} {path}", "NotFound")

    def res_of(self, o):
        if not isinstance(o, dict):
            raise ApiError(400, "object must be a JSON object")
        res = BY_KIND.get((o.get("apiVersion"), o.get("kind")))
        if res is None:
            raise ApiError(400, f"unknown apiVersion/kind {o.get('apiVersion')}/{o.get('kind')}")
        return res

    # ---- the API -----------------------------------------------------------
    def api(self, method, path, body):
        accept = self.headers.get("Accept", "")
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            return self.send_text(200, "ok")
        if method == "GET" and path == "/version":
            return self.send_json(200, VERSION_INFO)
        if method == "GET" and path in ("/api", "/apis"):
            for dv in ("v2", "v2beta1"):
                if f"g=apidiscovery.k8s.io;v={dv};as=APIGroupDiscoveryList" in accept.replace(" ", ""):
                    return self.send_json(
                        200, aggregated(path == "/api", dv),
                        f"application/json;g=apidiscovery.k8s.io;v={dv};as=APIGroupDiscoveryList")
            if path == "/api":
                port = self.server.server_address[1]
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [
                                                {"clientCIDR": "0.0.0.0/0",
                                                 "serverAddress": f"127.0.0.1:{port}"}]})
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [api_group(g) for g in GROUP_ORDER]})

        seg = path.split("/")[1:]
        if seg[0] == "api" and len(seg) >= 2:
            gv, rest = seg[1], seg[2:]
        elif seg[0] == "apis" and len(seg) >= 2:
            if len(seg) == 2:
                if seg[1] in GROUP_ORDER and method == "GET":
                    return self.send_json(200, dict(kind="APIGroup", apiVersion="v1", **api_group(seg[1])))
                raise self.path_not_found()
            if len(seg) < 3:
                raise self.path_not_found()
            gv, rest = f"{seg[1]}/{seg[2]}", seg[3:]
        else:
            raise self.path_not_found()
        if gv not in GROUP_VERSIONS:
            raise self.path_not_found()
        if not rest:
            if method == "GET":
                return self.send_json(200, resource_list(gv))
            raise self.path_not_found()

        ns = name = sub = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (gv, rest[2]) in BY_PATH:
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            plural, tail = rest[0], rest[1:]
        if len(tail) > 2:
            raise self.path_not_found()
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        res = BY_PATH.get((gv, plural))
        if res is None:
            raise self.path_not_found()
        if (ns is not None and not res.namespaced) or (ns is None and res.namespaced and name):
            raise self.path_not_found()
        if sub is not None and sub not in res.subresources:
            raise self.path_not_found()

        verb = {"GET": "get" if name else ("watch" if self.flag("watch") else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        if verb == "get" and sub == "log":
            verb = "get"
        if forbidden_match(res, sub):
            self.forbid(res, verb, ns, name, sub)

        if method == "GET" and name is None:
            return self.watch(res, ns) if verb == "watch" else self.list(res, ns)
        if method == "GET":
            if sub == "log":
                return self.pod_log(res, ns, name)
            return self.get_one(res, ns, name)
        if method == "POST" and name is None:
            return self.create(res, ns, body)
        if method == "PUT" and name:
            return self.replace(res, ns, name, body)
        if method == "PATCH" and name:
            return self.patch(res, ns, name, body)
        if method == "DELETE" and name and sub is None:
            return self.delete(res, ns, name)
        raise ApiError(405, "the server does not allow this method on the requested resource",
                       "MethodNotAllowed", {})

    def path_not_found(self):
        return ApiError(404, "the server could not find the requested resource", "NotFound", {})

    def forbid(self, res, verb, ns, name, sub):
        what = f'{qualified(res)} "{name}"' if name else qualified(res)
        resource = f'"{res.plural}"' + (f' subresource "{sub}"' if sub else "")
        scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        msg = (f'{what} is forbidden: User "{Config.user}" cannot {verb} resource {resource} '
               f'in API group "{res.group}" {scope}')
        raise ApiError(403, msg, "Forbidden", res_details(res, name))

    # ---- reads ---------------------------------------------------------------
    def selectors(self, res):
        try:
            return (parse_label_selector(self.p("labelSelector", "")),
                    parse_field_selector(res, self.p("fieldSelector", "")))
        except SelectorError as e:
            raise ApiError(400, str(e), "BadRequest")

    def get_one(self, res, ns, name):
        obj = STORE.get(res, obj_key(res, ns, name))
        if obj is None:
            raise not_found(res, name)
        return self.send_json(200, from_storage(res, obj))

    def list(self, res, ns):
        time.sleep(Config.list_delay)
        lsel, fsel = self.selectors(res)
        try:
            limit = int(self.p("limit", "0") or 0)
        except ValueError:
            raise ApiError(400, f"limit: Invalid value: {self.p('limit')!r}", "BadRequest")
        if limit < 0:
            limit = 0
        cont = self.p("continue", "") or ""
        rvq = self.p("resourceVersion", "") or ""
        rvm = self.p("resourceVersionMatch", "") or ""
        if cont and rvq:
            raise ApiError(400, "specifying resource version is not allowed when using continue",
                           "BadRequest")
        if rvm and not rvq:
            raise ApiError(422, "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                                "unless resourceVersion is provided", "Invalid")
        if rvm and rvm not in ("Exact", "NotOlderThan"):
            raise ApiError(422, f'resourceVersionMatch: Unsupported value: "{rvm}"', "Invalid")
        if rvm == "Exact" and rvq == "0":
            raise ApiError(422, 'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is '
                                'forbidden for resourceVersion "0"', "Invalid")
        if rvq == "0" and not cont:
            limit = 0  # served from the watch cache: the real apiserver ignores limit here
        if limit and Config.page_size_max:
            limit = min(limit, Config.page_size_max)
        start = ""
        with STORE.cond:
            if cont:
                try:
                    list_rv, start = decode_continue(cont)
                except ValueError as e:
                    raise ApiError(400, f"continue key is not valid: {e}", "BadRequest")
                if list_rv < STORE.compacted:
                    raise ApiError(
                        410, "The provided continue parameter is too old to display a consistent list "
                             "result. You can start a new list without the continue parameter, or use the "
                             "continue token in this response to retrieve the remainder of the results. "
                             "Continuing with the provided token results in an inconsistent list - objects "
                             "that were created, modified, or deleted between the time the first chunk was "
                             "returned and now may show up in the list.", "Expired")
            elif rvq and rvq != "0":
                try:
                    want = int(rvq)
                except ValueError:
                    raise ApiError(400, f'resourceVersion: Invalid value: "{rvq}": strconv.ParseUint: '
                                        f'parsing "{rvq}": invalid syntax', "BadRequest")
                if want > STORE.rv:
                    raise ApiError(504, f"Too large resource version: {want}, current: {STORE.rv}",
                                   "Timeout", {"causes": [{"reason": "ResourceVersionTooLarge",
                                                           "message": "Too large resource version"}],
                                               "retryAfterSeconds": 1})
                if rvm == "Exact":
                    if want < STORE.compacted:
                        raise ApiError(410, "The resourceVersion for the provided list is too old.",
                                       "Expired")
                    list_rv = want
                else:
                    list_rv = STORE.rv
            else:
                list_rv = STORE.rv
            if STORE.listed[0] != (res.storage, list_rv, ns):
                state = STORE.state_at(res.storage, list_rv)
                STORE.listed = ((res.storage, list_rv, ns), state, sorted(k for k in state if in_scope(k, ns)))
            _, state, keys = STORE.listed
        keys = keys[bisect.bisect_left(keys, start):]
        items, last_idx = [], -1
        for i, k in enumerate(keys):
            if limit and len(items) >= limit:
                break
            last_idx = i
            o = state[k]
            if label_matches(lsel, o) and field_matches(fsel, o):
                items.append(o)
        meta = {"resourceVersion": str(list_rv)}
        if limit and last_idx < len(keys) - 1:
            meta["continue"] = encode_continue(list_rv, keys[last_idx] + "\x00")
            if not lsel and not fsel:
                meta["remainingItemCount"] = len(keys) - last_idx - 1
        out_items = []
        for o in items:
            it = from_storage(res, o, deep=False)
            if Config.bare_list_items:
                it.pop("kind", None)
                it.pop("apiVersion", None)
            out_items.append(it)
        return self.send_json(200, {"kind": res.list_kind(), "apiVersion": res.gv, "metadata": meta,
                                    "items": out_items})

    def pod_log(self, res, ns, name):
        pod = STORE.get(res, obj_key(res, ns, name))
        if pod is None:
            raise not_found(res, name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = self.p("container") or ""
        if not container:
            if len(containers) > 1:
                raise ApiError(400, f"a container name must be specified for pod {name}, choose one of: "
                                    f"[{' '.join(containers)}]", "BadRequest")
            container = containers[0] if containers else ""
        elif containers and container not in containers:
            raise ApiError(400, f"container {container} is not valid for pod {name}", "BadRequest")
        prev = self.flag("previous")
        text = STORE.logs.get((ns, name, container, prev))
        if text is None:
            text = STORE.logs.get((ns, name, "", prev))
        if text is None and prev:
            raise ApiError(400, f'previous terminated container "{container}" in pod "{name}" not found',
                           "BadRequest")
        text = text or ""
        tail = self.p("tailLines")
        if tail is not None and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail):]) if int(tail) else ""
        limit = self.p("limitBytes")
        if limit is not None and limit.isdigit():
            # the kubelet stops after limitBytes bytes of the (tailed) log
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return self.send_text(200, text)

    # ---- watch ---------------------------------------------------------------
    def watch(self, res, ns):
        lsel, fsel = self.selectors(res)
        rvq = self.p("resourceVersion", "") or ""
        bookmarks = self.flag("allowWatchBookmarks")
        try:
            timeout = float(self.p("timeoutSeconds") or Config.watch_timeout)
        except ValueError:
            raise ApiError(400, "timeoutSeconds: invalid value", "BadRequest")
        if rvq not in ("", "0") and not rvq.isdigit():
            raise ApiError(400, f'resourceVersion: Invalid value: "{rvq}": strconv.ParseUint: parsing '
                                f'"{rvq}": invalid syntax', "BadRequest")

        def match(o):
            return o is not None and in_scope_obj(o) and label_matches(lsel, o) and field_matches(fsel, o)

        def in_scope_obj(o):
            return ns is None or (o.get("metadata") or {}).get("namespace") == ns

        initial, error = [], None
        with STORE.cond:
            if rvq in ("", "0"):
                pos = STORE.rv
                b = STORE.bucket(res.storage)
                initial = [b[k] for k in sorted(b) if match(b[k])]
            else:
                pos = int(rvq)
                if pos < STORE.compacted:
                    error = status_obj(410, f"too old resource version: {pos} ({STORE.compacted})", "Expired")
            idx = len(STORE.log)
            # position in the log of the first entry with rv > pos
            while idx > STORE.load_entries and STORE.log[idx - 1][0] > pos:
                idx -= 1

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

        def emit(typ, obj):
            line = json.dumps({"type": typ, "object": obj}) + "\n"
            data = line.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def bookmark(rv):
            emit("BOOKMARK", {"kind": res.kind, "apiVersion": res.gv, "metadata": {"resourceVersion": str(rv)}})

        try:
            if error:
                emit("ERROR", error)
            else:
                for o in initial:
                    emit("ADDED", from_storage(res, o, deep=False))
                deadline = time.monotonic() + timeout
                next_bm = time.monotonic() + Config.bookmark_interval
                while True:
                    with STORE.cond:
                        entries = STORE.log[idx:]
                        idx = len(STORE.log)
                        cur_rv = STORE.rv
                    for (_rv, st, _key, typ, obj, prev) in entries:
                        if st != res.storage:
                            continue
                        if typ == "DELETED":
                            if match(prev):
                                emit("DELETED", from_storage(res, obj))
                            continue
                        now_m, was_m = match(obj), match(prev)
                        if now_m and was_m:
                            emit("MODIFIED", from_storage(res, obj))
                        elif now_m:
                            emit("ADDED", from_storage(res, obj))
                        elif was_m:
                            emit("DELETED", from_storage(res, obj))
                    now = time.monotonic()
                    if now >= deadline:
                        if bookmarks:
                            bookmark(cur_rv)
                        break
                    if bookmarks and now >= next_bm:
                        bookmark(cur_rv)
                        next_bm = now + Config.bookmark_interval
                    if self.client_gone():
                        self.close_connection = True
                        return 200
                    with STORE.cond:
                        if len(STORE.log) == idx:
                            STORE.cond.wait(min(0.25, max(0.0, deadline - time.monotonic())))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        return 200

    def client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

    # ---- writes -------------------------------------------------------------
    def parse_obj(self, body):
        try:
            o = json.loads(body or b"")
        except ValueError as e:
            raise ApiError(400, f"the body of the request was in an unknown format: {e}", "BadRequest")
        if not isinstance(o, dict):
            raise ApiError(400, "the body of the request must be a JSON object", "BadRequest")
        return o

    def check_kind(self, res, o):
        av, kind = o.get("apiVersion"), o.get("kind")
        if (av and av != res.gv) or (kind and kind != res.kind):
            raise ApiError(400, f"the API version in the data ({av}) does not match the expected API "
                                f"version ({res.gv})" if av != res.gv else
                           f"the kind in the data ({kind}) does not match the expected kind ({res.kind})",
                           "BadRequest")

    def validate(self, res, o, name):
        errs = []
        if res.storage == "events":
            if res.group == "events.k8s.io":
                for f in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
                    if not o.get(f):
                        errs.append(f"{f}: Required value")
                inv = o.get("regarding") or {}
            else:
                inv = o.get("involvedObject") or {}
            t = o.get("type")
            if t and t not in ("Normal", "Warning"):
                errs.append(f'type: Unsupported value: "{t}": supported values: "Normal", "Warning"')
            ins = inv.get("namespace")
            mns = (o.get("metadata") or {}).get("namespace")
            if ins and mns and ins != mns:
                field = "regarding" if res.group else "involvedObject"
                errs.append(f'{field}.namespace: Invalid value: "{ins}": does not match event.namespace')
        if errs:
            kind = res.kind
            raise ApiError(422, f'{kind} "{name}" is invalid: ' + ", ".join(errs), "Invalid",
                           {"name": name, **({"group": res.group} if res.group else {}), "kind": kind,
                            "causes": [{"reason": "FieldValueInvalid", "message": e} for e in errs]})

    def prepare(self, res, ns, o):
        md = o.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise ApiError(400, "the namespace of the provided object does not match the namespace "
                                    "sent on the request", "BadRequest")
            md["namespace"] = ns
        return md

    def create(self, res, ns, body):
        o = self.parse_obj(body)
        self.check_kind(res, o)
        md = self.prepare(res, ns, o)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, f"{res.kind}.{res.group or 'core'} \"\" is invalid: metadata.name: "
                                    f"Required value: name or generateName is required", "Invalid")
        name = md["name"]
        self.validate(res, o, name)
        for f in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp"):
            md.pop(f, None)
        key = obj_key(res, ns, name)
        with STORE.cond:
            if STORE.get(res, key) is not None:
                raise ApiError(409, f'{qualified(res)} "{name}" already exists', "AlreadyExists",
                               res_details(res, name))
            if self.p("dryRun"):
                md["uid"] = str(uuid.uuid4())
                md["creationTimestamp"] = now_ts()
                return self.send_json(201, from_storage(res, to_storage(res, o)))
            _, stored = STORE.put(res, to_storage(res, o))
        return self.send_json(201, from_storage(res, stored))

    def replace(self, res, ns, name, body):
        o = self.parse_obj(body)
        self.check_kind(res, o)
        md = self.prepare(res, ns, o)
        if md.get("name") and md["name"] != name:
            raise ApiError(400, f"the name of the object ({md['name']}) does not match the name on the URL "
                                f"({name})", "BadRequest")
        md["name"] = name
        self.validate(res, o, name)
        key = obj_key(res, ns, name)
        with STORE.cond:
            cur = STORE.get(res, key)
            if cur is None and res.storage != "events":
                raise not_found(res, name)
            status, body = self.store_over(res, name, cur, md, o)
        return self.send_json(status, body)

    def store_over(self, res, name, cur, md, obj):
        """Stores `obj` over `cur` (keeping its uid and creation time), unless its
        resourceVersion is stale or the request is a dry run; the caller holds
        STORE.cond. Returns the status and body to send."""
        if cur is not None:
            rv = md.get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                raise self.conflict(res, name)
            md["uid"] = cur["metadata"].get("uid")
            md["creationTimestamp"] = cur["metadata"].get("creationTimestamp")
        if self.p("dryRun"):
            return 200, obj
        typ, stored = STORE.put(res, to_storage(res, obj))
        return (201 if typ == "ADDED" else 200), from_storage(res, stored)

    def conflict(self, res, name):
        return ApiError(409, f'Operation cannot be fulfilled on {qualified(res)} "{name}": the object has '
                             f'been modified; please apply your changes to the latest version and try again',
                        "Conflict", res_details(res, name))

    def patch(self, res, ns, name, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            doc = json.loads(body or b"")
        except ValueError as e:
            raise ApiError(400, f"the body of the request was in an unknown format: {e}", "BadRequest")
        key = obj_key(res, ns, name)
        with STORE.cond:
            cur = STORE.get(res, key)
            if ctype == "application/apply-patch+yaml":
                if not self.p("fieldManager"):
                    raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                        'is required for apply patch', "Invalid")
                base = from_storage(res, cur) if cur else {}
                new = merge_patch(base, doc)
            elif cur is None:
                raise not_found(res, name)
            elif ctype == "application/json-patch+json":
                new = json_patch(from_storage(res, cur), doc)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(doc, dict):
                    raise ApiError(400, "merge patch must be a JSON object", "BadRequest")
                new = merge_patch(from_storage(res, cur), doc)
            else:
                raise ApiError(415, f"the server does not support the media type {ctype!r} for patch",
                               "UnsupportedMediaType")
            self.check_kind(res, new)
            md = self.prepare(res, ns, new)
            md["name"] = name
            self.validate(res, new, name)
            status, body = self.store_over(res, name, cur, md, new)
        return self.send_json(status, body)

    def delete(self, res, ns, name):
        key = obj_key(res, ns, name)
        if self.p("dryRun"):
            cur = STORE.get(res, key)
            if cur is None:
                raise not_found(res, name)
            return self.send_json(200, from_storage(res, cur))
        gone = STORE.delete(res, key)
        if gone is None:
            raise not_found(res, name)
        return self.send_json(200, from_storage(res, gone))


# --------------------------------------------------------------------------
# Data loading and main
# --------------------------------------------------------------------------


def load_dir(data_dir):
    objs = []
    files = sorted(Path(data_dir).rglob("*.json"))
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except ValueError as e:
            raise SystemExit(f"{f}: invalid JSON: {e}")
        docs = doc if isinstance(doc, list) else [doc]
        for d in docs:
            kind = d.get("kind", "")
            if kind.endswith("List") and "items" in d:
                item_kind = kind[:-4] if kind != "List" else None
                for it in d.get("items") or []:
                    if item_kind and not it.get("kind"):
                        it["kind"] = item_kind
                    if not it.get("apiVersion") and d.get("apiVersion"):
                        it["apiVersion"] = d["apiVersion"]
                    objs.append((f, it))
            else:
                objs.append((f, d))
    out = []
    for f, o in objs:
        res = BY_KIND.get((o.get("apiVersion"), o.get("kind")))
        if res is None:
            sys.stderr.write(f"warning: {f}: skipping unsupported {o.get('apiVersion')}/{o.get('kind')}\n")
            continue
        out.append((res, to_storage(res, o, fresh=True)))
    # logs: DIR/logs/NS/POD.log or DIR/logs/NS/POD/CONTAINER.log (+ .previous.log)
    logs_dir = Path(data_dir) / "logs"
    if logs_dir.is_dir():
        for lf in sorted(logs_dir.rglob("*.log")):
            rel = lf.relative_to(logs_dir).parts
            stem = rel[-1][:-4]
            prev = stem.endswith(".previous")
            if prev:
                stem = stem[: -len(".previous")]
            if len(rel) == 2:
                STORE.logs[(rel[0], stem, "", prev)] = lf.read_text()
            elif len(rel) == 3:
                STORE.logs[(rel[0], rel[1], stem, prev)] = lf.read_text()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Kubernetes API server emulator for k8srule tests")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--data", help="directory of *.json objects / lists to load")
    ap.add_argument("--forbid", nargs="+", action="extend", default=[], metavar="RESOURCE",
                    help="resources answering 403 Forbidden (e.g. nodes, events.k8s.io/events)")
    ap.add_argument("--page-size-max", type=int, default=0, metavar="N",
                    help="cap the page size of limited lists at N (server returns fewer than asked)")
    ap.add_argument("--user", default=DEFAULT_USER, help="user named in Forbidden messages")
    ap.add_argument("--watch-timeout", type=float, default=30.0,
                    help="watch duration when timeoutSeconds is not given (default 30)")
    ap.add_argument("--bookmark-interval", type=float, default=5.0,
                    help="seconds between BOOKMARK events when allowWatchBookmarks=true (default 5)")
    ap.add_argument("--bare-list-items", action="store_true",
                    help="omit kind/apiVersion on list items, as the real apiserver does")
    ap.add_argument("--list-delay", type=float, default=0.0, metavar="SECONDS",
                    help="seconds each list waits before it answers, as a slow apiserver (default 0)")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)

    Config.forbid = set(args.forbid)
    Config.page_size_max = args.page_size_max
    Config.user = args.user
    Config.watch_timeout = args.watch_timeout
    Config.bookmark_interval = args.bookmark_interval
    Config.bare_list_items = args.bare_list_items
    Config.list_delay = args.list_delay
    Config.verbose = args.verbose

    objs = load_dir(args.data) if args.data else []
    try:
        STORE.load(objs)
    except ValueError as e:
        raise SystemExit(str(e))

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
