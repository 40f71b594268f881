"""CPU seconds by part of a stack (bench/cpu.py): the web server, each process of the
cluster by its role, and on PostgreSQL + Redis their server processes, read from
/proc (user + system) before and after a burst."""

import psutil


def workers(stack):
    """The pids of the processes that ran handlers (from the runs' ``worker``, host:pid/start)."""
    rows = stack.query("SELECT DISTINCT worker FROM workflow_run WHERE delivery_id IS NOT NULL")
    return {int(w.split(":")[1].split("/")[0]) for (w,) in rows if w}


def role(proc, stack, worker_pids):
    """A name for one of the stack's processes: the web server (runserver, with daphne
    inside), or the cluster's main process, a worker, or another of its processes
    (django-q2's sentinel, pusher and monitor)."""
    if proc.pid not in {p.pid for p in stack.cluster_processes()}:
        return "web server"
    if proc.pid in {p.pid for p in stack.cluster_mains()}:
        return "cluster main"
    if proc.pid in worker_pids:
        return f"worker {proc.pid}"
    return f"cluster other {proc.pid}"


def used(proc):
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def readings(stack):
    """CPU seconds so far per process of the stack (by pid) and of its services."""
    procs = {p.pid: p for p in stack.all_processes()}
    url = stack.env["DATABASE_URL"]
    database = url.rsplit("/", 1)[-1] if url.startswith("postgres") else None
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        backend = bool(database) and cmdline.startswith("postgres:") and f" {database} " in cmdline
        redis = proc.info["name"] == "redis-server" and "REDIS_URL" in stack.env
        if backend or redis:
            procs[proc.pid] = proc
    return {pid: (proc, used(proc)) for pid, proc in procs.items()}


def part_of(proc, stack, worker_pids):
    try:
        cmdline = " ".join(proc.cmdline())
        name = proc.name()
    except psutil.Error:
        return "gone"
    if cmdline.startswith("postgres:"):
        return "postgres"
    if name == "redis-server":
        return "redis"
    return role(proc, stack, worker_pids)


def cpu_by_part(stack, before, after):
    parts = {}
    worker_pids = workers(stack)
    for pid, (proc, seconds) in after.items():
        if seconds is None:
            continue
        start = before.get(pid, (None, 0.0))[1] or 0.0
        part = part_of(proc, stack, worker_pids)
        parts[part] = parts.get(part, 0.0) + seconds - start
    return parts


def split(parts):
    """(web server, cluster, database and Redis) CPU seconds of ``parts``."""
    services = sum(v for k, v in parts.items() if k in ("postgres", "redis"))
    web = parts.get("web server", 0.0)
    return web, sum(parts.values()) - web - services, services
