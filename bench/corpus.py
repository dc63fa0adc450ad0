#!/usr/bin/env python3
"""The compatibility corpus: real open-source Django projects, deployed, upgraded and rolled back unchanged.

    .venv/bin/python bench/corpus.py --bakerydemo /path/to/bakerydemo.git --healthchecks /path/to/healthchecks.git
    .venv/bin/python bench/corpus.py --djangopackages DIR --json results.json        # one project; results as JSON too
    .venv/bin/python bench/corpus.py --bakerydemo DIR --keep --workdir /tmp/corpus   # leave it deployed, to look
    .venv/bin/python bench/corpus.py --remove /tmp/corpus                             # then remove what it left

CI reaches no repository host, so the projects' git directories are arguments (a clone, a bare repository or
a mirror: anything `git --git-dir=DIR archive` reads). bench/corpus/projects.json pins, per project, an older
commit A and a later commit B with real migrations between them; bench/corpus/<project>/ holds only our files,
the deploy-side wrappers a user writes beside an app they did not write: `overlay/` (copied into the app's
source beside its files: a Dockerfile), `inventory/` (hosts, group_vars) and `hooks/` (hook task files,
beside the inventory).
The app's own files are never edited: the app source is a git repository assembled here, the project's tree
at A (then B) plus the overlay, and the requirements file the wheelhouse needs, made from the project's own
(`requirements` in projects.json: its lines less the sdists with C code the image cannot compile, plus a WSGI
server). Sdists without C code are left in: smart-deploy's build role builds them.

Per project, one after the other, the way a user runs them (`ansible-playbook playbooks/deploy.yml -i
<inventory>`, `playbooks/rollback.yml -e restore_db=true`): deploy A, upgrade to B, roll back to A with the
database; after each step the project's real pages (`pages`) are asked through smart-deploy's proxy (over
HTTPS for a project with `tls`: a self-signed certificate for the inventory's smart_deploy_server_name, made
in the work folder beside the inventory, `tls/`, which the inventory reads; SNI and Host that name, the
certificate checked), its worker components' running containers counted (`workers`) and the files in its
named volumes (`volumes`). Prints one table per project: each step's exit, outcome, rehearsal verdict and
reasons, migrations applied, seconds, pages answered, workers and volume files, the first error line; then the
wrappers needed and what the project needs of workers, volumes, Redis and TLS; and one line per project: pass
(every step live, every page 200, every worker running) or fail.

Loopback only (the proxy on 127.0.0.1, free ports); the wheelhouse is filled by smart-deploy's build role with
`pip download` (PyPI). Bounded: every playbook at most 20 minutes. Removes everything it made (containers,
networks, volumes, images, state folders) unless --keep.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "corpus"
VENV_BIN = Path(os.environ.get("SMART_DEPLOY_VENV", ROOT / ".venv")) / "bin"
PLAYBOOK_TIMEOUT = 1200
PAGE_TIMEOUT = 20
GIT = ["git", "-c", "user.name=smart-deploy corpus", "-c", "user.email=corpus@example.invalid"]


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned() -> dict:
    return json.loads((CORPUS / "projects.json").read_text())


# --- the app source: the project's tree at a commit, plus our wrappers ------------------------------------
def requirement_name(line: str) -> str:
    """The normalised project name a requirement line starts with ('' for comments, options, blank lines)."""
    stripped = line.strip()
    if not stripped or stripped.startswith(("#", "-")):
        return ""
    return re.split(r"[\s\[<>=!~;@\\]", stripped, maxsplit=1)[0].lower().replace("_", "-")


def wheelhouse_requirements(app: Path, rule: dict) -> str:
    """The project's requirements file less the packages in rule['drop'] (with their hash and comment lines),
    its `-r`/`-c` lines pointing at the project's own files, plus each of rule['add'] the file does not name
    already: what smart-deploy/requirements.txt holds."""
    source = app / rule["from"]
    folder = Path(os.path.relpath(source.parent, app / "smart-deploy"))
    drop = {name.lower().replace("_", "-") for name in rule.get("drop", [])}
    header = "# made by bench/corpus.py from %s: less %s, plus what it lacks of %s" % (
        rule["from"], ", ".join(sorted(drop)) or "nothing", ", ".join(a.split()[0] for a in rule.get("add", [])) or "nothing")  # fmt: skip
    lines, named, skipping = [header], set(), False
    for line in source.read_text().splitlines():
        stripped = line.strip()
        if skipping and (line[:1].isspace() or not stripped):  # the dropped entry's --hash and "# via" lines
            continue
        skipping = False
        include = re.match(r"^(-r|-c|--requirement|--constraint)\s+(\S+)", stripped)
        if include:
            lines.append("%s %s" % (include.group(1), (folder / include.group(2)).as_posix()))
            continue
        name = requirement_name(line)
        if name in drop:
            skipping = True
            continue
        named.add(name)
        lines.append(line)
    lines += [extra for extra in rule.get("add", []) if requirement_name(extra) not in named]
    return "\n".join(lines) + "\n"


def assemble(app: Path, gitdir: Path, commit: str, project: str, spec: dict) -> str:
    """Make ``app`` hold the project's files at ``commit`` and our overlay, committed; returns the commit's
    message. The wheelhouse (smart-deploy/wheels, ignored through .git/info/exclude) is kept across commits."""
    if not (app / ".git").exists():
        app.mkdir(parents=True, exist_ok=True)
        run([*GIT, "-C", str(app), "init", "-q"]).check_returncode()
        (app / ".git" / "info").mkdir(exist_ok=True)
        (app / ".git" / "info" / "exclude").write_text("smart-deploy/wheels/\n")
    for child in app.iterdir():
        if child.name == ".git":
            continue
        if child.name == "smart-deploy" and (child / "wheels").exists():
            for inner in child.iterdir():
                if inner.name != "wheels":
                    shutil.rmtree(inner) if inner.is_dir() else inner.unlink()
            continue
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    archive = subprocess.run(["git", "--git-dir", str(gitdir), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(app)], input=archive.stdout, check=True)
    if (app / "smart-deploy").exists() and any(p.name != "wheels" for p in (app / "smart-deploy").iterdir()):
        raise SystemExit("%s at %s has a folder smart-deploy/ of its own: pick another overlay name" % (project, commit[:12]))
    shutil.copytree(CORPUS / project / "overlay", app, dirs_exist_ok=True)
    rule = dict(spec["requirements"])
    (app / "smart-deploy" / "requirements.txt").write_text(wheelhouse_requirements(app, rule))
    message = "%s at %s" % (project, commit)
    run([*GIT, "-C", str(app), "add", "-A"]).check_returncode()
    run([*GIT, "-C", str(app), "commit", "-qm", message, "--allow-empty"]).check_returncode()
    return message


def count_migrations(gitdir: Path, a: str, b: str) -> tuple[int, int]:
    """Migration files of the project's own apps at A and at B (libraries' migrations come on top)."""

    def files(commit):
        names = run(["git", "--git-dir", str(gitdir), "ls-tree", "-r", "--name-only", commit]).stdout.split()
        return {n for n in names if re.search(r"/migrations/\d{4}_\w+\.py$", n)}

    at_a, at_b = files(a), files(b)
    return len(at_a), len(at_b - at_a)


# --- TLS: a self-signed certificate for the name the app serves, made for the run ------------------------------
def make_certificate(folder: Path, name: str) -> None:
    """``folder``/site.crt and site.key: a self-signed certificate for ``name`` (valid from yesterday for 30
    days) and its unencrypted key, what the inventory gives smart-deploy's proxy; never committed."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "site.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address (the proxy's loopback port) with ``server_name`` as SNI, the certificate checked
    against that name."""

    def __init__(self, host: str, port: int, server_name: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


# --- one deployment ----------------------------------------------------------------------------------------
class Deployment:
    def __init__(self, project: str, spec: dict, gitdir: Path, workdir: Path):
        self.project, self.spec, self.gitdir = project, spec, gitdir
        self.base = workdir / project
        self.app = self.base / "app"
        self.inventory = self.base / "inventory"
        self.state = self.base / "state"
        self.logs = self.base / "logs"
        self.port = free_port()
        self.https_port = free_port() if spec.get("tls") else 0
        self.base.mkdir(parents=True, exist_ok=True)
        shutil.copytree(CORPUS / project / "inventory", self.inventory)
        if (CORPUS / project / "hooks").is_dir():  # beside the inventory: in it, Ansible parses them as inventory
            shutil.copytree(CORPUS / project / "hooks", self.base / "hooks")
        for folder in (self.logs, self.base / "secrets"):
            folder.mkdir(exist_ok=True)
        self.name = self.ansible_var("smart_deploy_app_name")
        self.server_name = self.ansible_var("smart_deploy_server_name", "")
        self.ssl_context = None
        if self.https_port:  # beside the inventory, as its app.yml reads them (../tls)
            make_certificate(self.base / "tls", self.server_name)
            self.ssl_context = ssl.create_default_context(cafile=str(self.base / "tls" / "site.crt"))

    def ansible_var(self, name: str, default: str | None = None) -> str:
        text = (self.inventory / "group_vars" / "all" / "app.yml").read_text()
        found = re.search(r"^%s:\s*(\S+)" % name, text, re.M)
        if found is None and default is not None:
            return default
        return found.group(1)

    def playbook(self, name: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
                   SMART_DEPLOY_LOG_DIR=str(self.logs), ANSIBLE_NOCOLOR="1")  # fmt: skip
        cmd = [str(VENV_BIN / "ansible-playbook"), "playbooks/%s.yml" % name, "-i", str(self.inventory),
               "-e", "smart_deploy_http_port=%d" % self.port, "-e", "smart_deploy_actor=bench-corpus", *args]  # fmt: skip
        if self.https_port:
            cmd[4:4] = ["-e", "smart_deploy_https_port=%d" % self.https_port]
        started = time.monotonic()
        try:
            result = run(cmd, cwd=ROOT, env=env, timeout=PLAYBOOK_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            result = subprocess.CompletedProcess(cmd, 124, exc.stdout or "", (exc.stderr or "") + "\ntimed out")
        seconds = time.monotonic() - started
        (self.logs / ("%s-%d.out" % (name, int(time.time())))).write_text(str(result.stdout) + "\n--- stderr\n" + str(result.stderr))
        return result, seconds

    def run_log(self, since: float = 0.0) -> dict:
        """The newest JSON run log written after ``since`` (a time.time()), {} when the run wrote none."""
        logs = sorted((p for p in self.logs.glob("*.json") if p.stat().st_mtime >= since), key=lambda p: p.stat().st_mtime)
        return json.loads(logs[-1].read_text()) if logs else {}

    def newest_validation(self, since: float) -> dict:
        folder = self.state / "validations"
        reports = [p for p in folder.glob("*.json") if p.stat().st_mtime >= since] if folder.exists() else []
        if not reports:
            return {}
        try:
            return json.loads(max(reports, key=lambda p: p.stat().st_mtime).read_text())
        except (OSError, ValueError):
            return {}

    def page(self, path: str) -> str:
        """The status of a GET of ``path`` through smart-deploy's proxy: over HTTPS when the project has TLS
        (SNI and Host the name the app serves, the certificate checked against the one made for the run).
        A redirect to a path of the same site is followed, as a browser and smart-deploy's endpoint checks do
        (healthchecks' `/` sends a visitor to its login page): "302>200"; one elsewhere is not."""
        chain = []
        for _ in range(5):
            status, location = self.get(path)
            chain.append(status)
            target = urllib.parse.urlsplit(location or "")
            own = {"", self.server_name or "localhost", "%s:%d" % (self.server_name or "localhost", self.https_port or self.port)}
            if status not in ("301", "302", "303", "307", "308") or not location or target.netloc not in own:
                break
            if target.scheme and target.scheme != ("https" if self.https_port else "http"):
                break
            path = urllib.parse.urljoin(path, urllib.parse.urlunsplit(("", "", target.path, target.query, "")))
        return ">".join(chain)

    def get(self, path: str) -> tuple[str, str]:
        """(status, Location) of one GET through the proxy, or (the error's name, "")."""
        if self.https_port:
            conn = NamedHTTPSConnection("127.0.0.1", self.https_port, self.server_name, context=self.ssl_context, timeout=PAGE_TIMEOUT)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PAGE_TIMEOUT)
        try:
            conn.request("GET", path, headers={"Host": self.server_name or "localhost"})
            response = conn.getresponse()
            return str(response.status), response.getheader("Location", "")
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__, ""
        finally:
            conn.close()

    def workers(self) -> dict:
        """Running containers per worker component named in projects.json (``workers``)."""
        running = {}
        for component in self.spec.get("workers", []):
            filters = ["--filter", "label=smart-deploy.app=%s" % self.name, "--filter", "label=smart-deploy.component=%s" % component]
            running[component] = len(run(["docker", "ps", "-q", *filters]).stdout.split())
        return running

    def volume_files(self) -> dict:
        """Files in each named volume of projects.json (``volumes``), counted in a one-off container."""
        counted = {}
        for volume in self.spec.get("volumes", []):
            docker_name = "%s-%s" % (self.name, volume)
            if run(["docker", "volume", "inspect", docker_name]).returncode != 0:
                counted[volume] = "absent"
                continue
            found = run(["docker", "run", "--rm", "-v", "%s:/v:ro" % docker_name, "python:3.11-slim-bookworm", "find", "/v", "-type", "f"])
            counted[volume] = str(len(found.stdout.split())) if found.returncode == 0 else "error"
        return counted

    def step(self, label: str, playbook: str, *args: str) -> dict:
        started_wall = time.time()
        result, seconds = self.playbook(playbook, *args)
        summary = self.run_log(started_wall).get("summary", {})
        report = self.newest_validation(started_wall)
        verdict = report.get("report", report).get("strategy") or summary.get("steps", {}).get("validation", "")
        reasons = report.get("report", report).get("reasons") or report.get("report", report).get("abort_reasons") or []
        pages = {path: self.page(path) for path in self.spec["pages"]}
        workers, volume_files = self.workers(), self.volume_files()
        output = str(result.stdout) + str(result.stderr)
        error = ""
        if result.returncode != 0:
            found = re.findall(r"(?:fatal|FAILED|ERROR|failed)[^\n]{0,400}", output)
            error = found[-1] if found else output.strip().splitlines()[-1:] and output.strip().splitlines()[-1]
        return {
            "step": label,
            "exit": result.returncode,
            "outcome": str(summary.get("outcome", "(no summary)")),
            "verdict": str(verdict or "-"),
            "reasons": ", ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons),
            "migrations": str(summary.get("steps", {}).get("migrations", "-")),
            "seconds": seconds,
            "pages": pages,
            "workers": workers,
            "volume_files": volume_files,
            "error": " ".join(str(error).split())[:300],
        }

    def remove(self) -> None:
        """Everything this deployment made: containers, networks, volumes, images, its folders."""
        label = "label=smart-deploy.app=%s" % self.name
        ids = run(["docker", "ps", "-aq", "--filter", label]).stdout.split()
        if ids:
            run(["docker", "rm", "-f", *ids])
        for kind in ("network", "volume"):
            names = run(["docker", kind, "ls", "-q", "--filter", label]).stdout.split()
            names += [n for n in run(["docker", kind, "ls", "--format", "{{.Name}}"]).stdout.split() if n.startswith(self.name + "-")]
            for name in sorted(set(names)):
                run(["docker", kind, "rm", "-f", name] if kind == "volume" else ["docker", kind, "rm", name])
        images = run(["docker", "images", "-q", "--filter", "reference=%s-*" % self.name]).stdout.split()
        images += run(["docker", "images", "-q", "--filter", label]).stdout.split()
        if images:
            run(["docker", "rmi", "-f", *sorted(set(images))])
        shutil.rmtree(self.base, ignore_errors=True)


def remove_kept(workdir: Path) -> None:
    """Remove what an earlier run with --keep left in ``workdir`` (one folder per project)."""
    for base in sorted(p for p in workdir.iterdir() if (p / "inventory").is_dir()):
        deployment = Deployment.__new__(Deployment)
        deployment.base, deployment.inventory = base, base / "inventory"
        deployment.name = deployment.ansible_var("smart_deploy_app_name")
        print("removing %s (%s)" % (deployment.name, base))
        deployment.remove()


def corpus_run(project: str, spec: dict, gitdir: Path, workdir: Path, keep: bool, keep_logs: bool = False) -> dict:
    deployment = Deployment(project, spec, gitdir, workdir)
    own_at_a, own_new = count_migrations(gitdir, spec["a"], spec["b"])
    results = {"project": project, "name": deployment.name, "own_migrations_a": own_at_a, "own_migrations_new": own_new, "steps": []}
    try:
        assemble(deployment.app, gitdir, spec["a"], project, spec)
        print("%s: deploy A %s (%s)" % (project, spec["a"][:12], spec["a_label"]), flush=True)
        results["steps"].append(deployment.step("deploy A", "deploy"))
        if results["steps"][-1]["exit"] == 0:
            assemble(deployment.app, gitdir, spec["b"], project, spec)
            print("%s: upgrade to B %s (%s)" % (project, spec["b"][:12], spec["b_label"]), flush=True)
            results["steps"].append(deployment.step("upgrade to B", "deploy"))
            if results["steps"][-1]["exit"] == 0:
                print("%s: rollback --restore-db" % project, flush=True)
                results["steps"].append(deployment.step("rollback --restore-db", "rollback", "-e", "restore_db=true"))
    finally:
        if keep:
            print("%s kept: %s (http://127.0.0.1:%d/)" % (project, deployment.base, deployment.port))
        else:
            if keep_logs:  # the playbooks' output and run logs, for a look after the run
                shutil.copytree(deployment.logs, workdir / ("%s-logs" % project), dirs_exist_ok=True)
            deployment.remove()
    steps = results["steps"]
    results["pass"] = len(steps) == 3 and all(
        s["exit"] == 0 and all(v.endswith("200") for v in s["pages"].values()) and all(n > 0 for n in s["workers"].values()) for s in steps
    )
    return results


def table(result: dict, spec: dict) -> str:
    rows = [("step", "exit", "outcome", "verdict", "migrations", "seconds", "pages (status)", "workers / volume files", "error / reasons")]
    for s in result["steps"]:
        pages = " ".join("%s=%s" % (p, c) for p, c in s["pages"].items())
        seen = " ".join(["%s=%d" % w for w in s["workers"].items()] + ["%s:%s" % v for v in s["volume_files"].items()])
        note = (s["error"] or s["reasons"])[:160]
        cells = (s["step"], str(s["exit"]), s["outcome"][:40], s["verdict"][:40], s["migrations"][:40], "%.0f" % s["seconds"])
        rows.append((*cells, pages, seen or "-", note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = ["%s  %s" % (result["project"], spec["url"]), "A %s (%s)" % (spec["a"][:12], spec["a_label"]),
             "B %s (%s)" % (spec["b"][:12], spec["b_label"]),
             "the project's own migrations: %d at A, %d more at B (libraries' on top)" % (result["own_migrations_a"],
                                                                                       result["own_migrations_new"]),
             border]  # fmt: skip
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            lines.append(border)
    lines.append(border)
    lines.append("wrappers: " + "; ".join(spec["wrappers"]))
    lines.append("needs: " + "; ".join("%s: %s" % item for item in spec["needs"].items()))
    lines.append("%s: %s" % (result["project"], "PASS" if result["pass"] else "FAIL"))
    return "\n".join(lines)


def main(argv=None):
    projects = pinned()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for project in projects:
        parser.add_argument("--%s" % project, metavar="GITDIR", type=Path, help="git directory of %s" % projects[project]["url"])
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the app sources, inventories and state go (default: a temporary folder); the runs' logs stay there",
    )
    parser.add_argument("--keep", action="store_true", help="leave the deployments running and their folders (remove them yourself)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--remove", type=Path, metavar="WORKDIR", help="only remove what a run with --keep left in WORKDIR")
    args = parser.parse_args(argv)
    if args.remove:
        remove_kept(args.remove)
        return 0
    chosen = {p: getattr(args, p) for p in projects if getattr(args, p) is not None}
    if not chosen:
        parser.error("give at least one project's git directory (%s)" % ", ".join("--" + p for p in projects))
    for project, gitdir in chosen.items():
        for commit in (projects[project]["a"], projects[project]["b"]):
            if run(["git", "--git-dir", str(gitdir), "cat-file", "-e", commit + "^{commit}"]).returncode != 0:
                parser.error("--%s %s has no commit %s" % (project, gitdir, commit))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="smart-deploy-corpus-"))
    results = []
    try:
        for project, gitdir in chosen.items():
            results.append(corpus_run(project, projects[project], gitdir.resolve(), workdir, args.keep, args.workdir is not None))
            print()
            print(table(results[-1], projects[project]), flush=True)
            print()
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(" ".join("%s %s" % (r["project"], "PASS" if r["pass"] else "FAIL") for r in results))
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
