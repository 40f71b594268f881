"""The guide (docs/ and README.md) stays true to the code: the tutorial's step files are
the project's, every setting and command is documented, links resolve, and the README
keeps the two commands CI and readers run."""

import re
from pathlib import Path

import pytest

from tests.docs.markdown import FENCE, blocks
from workflow.conf import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUN = (
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && "
    ".venv/bin/python manage.py migrate && .venv/bin/python manage.py runserver"
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def read(path):
    return (ROOT / path).read_text()


def pages():
    return sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


def anchors(markdown):
    """GitHub's anchors for the headings of ``markdown``."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", markdown), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_tutorials_step_files_are_the_projects_own():
    """Each python block headed by a file path shows that file, whole."""
    shown = [b for b in blocks(read("docs/tutorial.md"), "python") if b.startswith("# users/")]
    assert len(shown) == 5
    for block in shown:
        first, _, body = block.partition("\n")
        assert body == read(first[2:]), f"docs/tutorial.md shows {first[2:]} unlike the file"


def test_the_tutorial_installs_pytest_before_it_runs_it():
    """The tutorial's first `python -m pytest` comes after it says to install
    requirements-dev.txt, the requirements that hold pytest (requirements.txt does not)."""
    tutorial = read("docs/tutorial.md")
    first_run = tutorial.index("\npython -m pytest ")
    assert "pip install -r requirements-dev.txt" in tutorial[:first_run]
    assert re.search(r"^pytest==", read("requirements-dev.txt"), re.MULTILINE)
    assert not re.search(r"^pytest==", read("requirements.txt"), re.MULTILINE)


def test_every_workflow_setting_is_documented():
    text = read("docs/settings.md")
    for key in DEFAULTS:
        assert f"| `{key}` |" in text, f"WORKFLOW[{key!r}] is not in docs/settings.md"


@pytest.mark.parametrize("settings_file", ["config/settings.py", "config/production.py"])
def test_every_environment_variable_is_documented(settings_file):
    source = read(settings_file)
    names = set(re.findall(r"(?:environ\.get|env_flag)\(\s*\"([A-Z_]+)\"", source))
    names -= {"DJANGO_SETTINGS_MODULE"}
    assert names, f"no environment variables found in {settings_file}"
    text = read("docs/settings.md")
    for name in names:
        assert f"| `{name}` |" in text, f"{name} ({settings_file}) is not in docs/settings.md"


def test_every_management_command_of_the_framework_is_documented():
    text = read("docs/commands.md")
    commands = ROOT / "workflow" / "management" / "commands"
    for module in sorted(commands.glob("[!_]*.py")):
        assert f"\n## {module.stem}\n" in text, (
            f"manage.py {module.stem} is not in docs/commands.md"
        )


# Pages another part of the work writes; until they exist, a link to one skips the test
# (saying so) once every other link of the page has been checked.
PENDING = {"deployment.md": "docs/deployment.md (PostgreSQL, Redis, many machines)"}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_links_resolve(page):
    """Every relative link names an existing file, and an anchor one of its headings."""
    pending = set()
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() and file.name in PENDING and file.parent == DOCS:
            pending.add(PENDING[file.name])
            continue
        assert file.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file.read_text()), f"{page.name}: no #{anchor} in {path}"
    if pending:
        pytest.skip(f"{page.name} links to {', '.join(sorted(pending))}, not written yet")


def test_the_index_links_every_page():
    index = read("docs/index.md")
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


def test_the_readme_keeps_its_two_commands_the_picture_and_the_guide():
    """The run command, and the test command exactly as CI runs it (.ci/run)."""
    readme = read("README.md")
    [ci_command] = [
        line
        for line in read(".ci/run").splitlines()
        if line.startswith("python3 -m venv .venv && ") and "-m pytest" in line
    ]
    assert f"\n{ci_command}\n" in readme
    assert f"\n{RUN}\n" in readme
    assert "![The workbench](docs/workbench.png)" in readme
    assert "(docs/index.md)" in readme
