"""``manage.py startstep``: a step and its test, both passing as written; clear refusals.

The end-to-end tests make a throwaway project (an app ``shop`` added to this project's
settings, its own BASE_DIR), run ``manage.py startstep`` there for each step type, then
run the generated tests with pytest, ruff and ``manage.py check``, all in subprocesses.
One of the steps subscribes to this project's real ``user.registered``: a registration
through the real API reaches it and succeeds. (It is not named NotifyAdmin: the tutorial's
"Add a step" writes a NotifyAdmin into users, and this project may hold it.)
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from workflow.registry import registry
from workflow.scaffold import snake_case

ROOT = Path(settings.BASE_DIR)
SETTINGS = """\
from pathlib import Path

from config.settings import *  # noqa: F403

BASE_DIR = Path(__file__).resolve().parent
INSTALLED_APPS = [*INSTALLED_APPS, "shop"]  # noqa: F405
"""
APPS = 'from django.apps import AppConfig\n\n\nclass ShopConfig(AppConfig):\n    name = "shop"\n'


def make_project(root, with_tests_dir=True):
    """A project dir holding an empty app ``shop`` and a settings module using it."""
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").touch()
    (root / "shop" / "apps.py").write_text(APPS)
    (root / "shop_settings.py").write_text(SETTINGS)
    if with_tests_dir:
        (root / "tests").mkdir()
        (root / "tests" / "__init__.py").touch()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "shop_settings",
        "DATABASE_URL": f"sqlite:///{root / 'db.sqlite3'}",
    }
    env.pop("PYTEST_ADDOPTS", None)

    def run(*args, check=True):
        done = subprocess.run(
            [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    return run


def startstep(run, *args, check=True):
    return run(str(ROOT / "manage.py"), "startstep", "shop", *args, check=check)


STEPS = [
    ("CreateOrder", "--type", "api", "--path", "/orders/:orderId", "--emits", "order.created"),
    ("GetOrder", "--type", "api", "--method", "get", "--path", "/orders/:orderId"),
    (
        "ProcessOrder",
        "--type",
        "event",
        "--subscribes",
        "order.created",
        "--emits",
        "order.processed,order.logged",
    ),
    ("NightlyReport", "--type", "cron", "--cron", "0 3 * * *", "--emits", "report.due"),
    ("ManualReview", "--type", "noop", "--subscribes", "order.processed", "--emits", "order.ok"),
    (
        "NotifySales",
        "--type",
        "event",
        "--subscribes",
        "user.registered",
        "--emits",
        "sales.notified",
    ),
]
REGISTRATION_TEST = """\
import pytest

from workflow.testing import FlowTester


@pytest.mark.django_db
def test_a_real_registration_reaches_notify_sales():
    flow = FlowTester(sleep=False)
    body = {"name": "Ann Lee", "email": "ann@example.com", "password": "securepass123"}
    response = flow.post("/users/register", body)
    assert response.status_code == 201, response.content
    [delivery] = flow.deliveries("NotifySales")
    assert (delivery.status, delivery.last_error) == ("succeeded", "")
    user_id = response.json()["userId"]
    notified = {"userId": user_id, "name": "Ann Lee", "email": "ann@example.com"}
    assert flow.emitted("sales.notified") == [notified]
"""


# pytest in the throwaway project, with its settings.
PYTEST = ("-m", "pytest", "-p", "no:cacheprovider", "--ds=shop_settings", "-q")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The throwaway project with one step of each type generated into ``shop``."""
    root = tmp_path_factory.mktemp("startstep")
    run = make_project(root)
    outputs = {args[0]: startstep(run, *args).stdout for args in STEPS}
    return root, run, outputs


def first_declaring(topic):
    """The first of this project's subscribers of ``topic`` that declares an input."""
    return next(s.name for s in registry.subscribers(topic) if s.config.input is not None)


def test_each_type_writes_a_step_and_a_test_and_says_where(project):
    """Each step and its test where the app's are; an event step's input line names
    the serializer and the first subscriber of its topic declaring it (SendWelcomeEmail,
    of the tutorial's steps)."""
    root, _, outputs = project
    declarer = first_declaring("user.registered")
    for name, snake in [
        ("CreateOrder", "create_order"),
        ("GetOrder", "get_order"),
        ("ProcessOrder", "process_order"),
        ("NightlyReport", "nightly_report"),
        ("ManualReview", "manual_review"),
        ("NotifySales", "notify_sales"),
    ]:
        assert (root / "shop" / "steps" / f"{snake}_step.py").is_file()
        assert (root / "tests" / "shop" / f"test_{snake}_step.py").is_file()
        input_line = (
            [
                "its input: NewUserSerializer from users.serializers, as "
                f"{declarer} takes user.registered"
            ]
            if name == "NotifySales"
            else []
        )
        assert outputs[name].splitlines() == [
            f"wrote shop/steps/{snake}_step.py",
            f"wrote tests/shop/test_{snake}_step.py",
            *input_line,
            f"run its test: python -m pytest tests/shop/test_{snake}_step.py",
        ]
    assert (root / "tests" / "shop" / "__init__.py").is_file()


def test_an_event_step_takes_the_input_its_topics_subscribers_declare(project):
    """NotifySales (user.registered) imports NewUserSerializer from users.serializers, the
    input SendWelcomeEmail declares, and invents no field; ProcessOrder (order.created,
    which no subscriber describes) takes the data as it is: no input, nothing required."""
    root, _, _ = project
    notify = (root / "shop" / "steps" / "notify_sales_step.py").read_text()
    assert "from users.serializers import NewUserSerializer\n" in notify
    assert "    input=NewUserSerializer,\n" in notify
    assert "message" not in notify and "serializers.Serializer" not in notify
    process = (root / "shop" / "steps" / "process_order_step.py").read_text()
    assert "    input=" not in process and "message" not in process
    assert "No input is declared for order.created yet" in process


def test_a_real_registration_is_delivered_to_the_new_step(project):
    """POST /users/register (RegisterUser's real user.registered) in the throwaway
    project: the delivery to the generated NotifySales succeeds, and it emits the user."""
    root, run, _ = project
    (root / "tests" / "shop" / "test_registration_reaches_notify_sales.py").write_text(
        REGISTRATION_TEST
    )
    done = run(*PYTEST, "tests/shop/test_registration_reaches_notify_sales.py")
    assert done.stdout.splitlines()[-1].startswith("1 passed in"), done.stdout


def test_the_generated_tests_pass_as_written(project):
    """pytest runs every generated test in the throwaway project: all pass."""
    root, run, _ = project
    tests = [f"tests/shop/test_{snake_case(args[0])}_step.py" for args in STEPS]
    done = run(*PYTEST, *tests)
    # CreateOrder 2 (answers 200, 400 to a bad body), GetOrder 1, ProcessOrder 2 (no input
    # declared: nothing to refuse), NightlyReport 2, ManualReview 1, NotifySales 3.
    assert done.stdout.splitlines()[-1].startswith("11 passed in"), done.stdout


def test_the_generated_steps_load_without_errors(project):
    """manage.py check: no errors (only the warnings of topics nobody subscribes to yet)."""
    _, run, _ = project
    done = run(str(ROOT / "manage.py"), "check")
    assert "ERRORS" not in done.stderr + done.stdout
    assert "workflow.E" not in done.stderr + done.stdout
    assert "NightlyReport emits 'report.due', which no step subscribes to" in done.stderr


def test_the_generated_files_pass_ruff(project):
    root, run, _ = project
    config = str(ROOT / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        run("-m", "ruff", *command, "--config", config, "shop", "tests")


def test_the_generated_tests_fail_when_the_step_breaks(project, tmp_path):
    """The generated tests check the step's behaviour: drop an emit, change a status,
    and they fail."""
    root, run, _ = project
    event = root / "shop" / "steps" / "process_order_step.py"
    api = root / "shop" / "steps" / "create_order_step.py"
    originals = {path: path.read_text() for path in (event, api)}
    try:
        event.write_text(originals[event].replace('    ctx.emit("order.logged"', '    print("'))
        api.write_text(originals[api].replace('"status": 200', '"status": 202'))
        done = run(
            *PYTEST,
            "tests/shop/test_process_order_step.py",
            "tests/shop/test_create_order_step.py",
            check=False,
        )
    finally:
        for path, text in originals.items():
            path.write_text(text)
    assert done.returncode == 1
    assert "FAILED tests/shop/test_process_order_step.py::test_process_order_keeps" in done.stdout
    assert "FAILED tests/shop/test_create_order_step.py::test_create_order_answers_200" in (
        done.stdout
    )


def test_an_existing_step_file_is_not_overwritten(project):
    root, run, _ = project
    step = root / "shop" / "steps" / "create_order_step.py"
    before = step.read_text()
    # "createOrder" is no registered step, but its file is create_order_step.py too.
    done = startstep(run, "createOrder", "--type", "event", "--subscribes", "x", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "CommandError: shop/steps/create_order_step.py already exists; not overwriting it"
    )
    assert step.read_text() == before


def test_an_existing_test_file_is_not_overwritten_and_nothing_is_written(project):
    root, run, _ = project
    test_file = root / "tests" / "shop" / "test_refund_step.py"
    test_file.write_text("# mine\n")
    done = startstep(run, "Refund", "--type", "event", "--subscribes", "x", check=False)
    assert "tests/shop/test_refund_step.py already exists" in done.stderr
    assert test_file.read_text() == "# mine\n"
    assert not (root / "shop" / "steps" / "refund_step.py").exists()


def test_without_a_tests_dir_the_test_goes_in_the_app(tmp_path):
    """A project with no top-level tests/ gets <app>/tests/ (a package)."""
    run = make_project(tmp_path, with_tests_dir=False)
    out = startstep(run, "Review", "--type", "noop").stdout
    assert "wrote shop/tests/test_review_step.py" in out
    assert (tmp_path / "shop" / "tests" / "__init__.py").is_file()


# Refusals, in this process (nothing is written: checked by the `untouched` fixture) ----------


@pytest.fixture
def untouched():
    """Fails the test if startstep wrote into this project's users app or tests."""
    dirs = [ROOT / "users" / "steps", ROOT / "tests" / "users"]
    before = {d: sorted(p.name for p in d.iterdir()) for d in dirs}
    yield
    assert {d: sorted(p.name for p in d.iterdir()) for d in dirs} == before


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["nope", "X", "--type", "noop"],
            "no installed app labelled 'nope'; this project's apps: ",
        ),
        (["auth", "X", "--type", "noop"], "app 'auth' .* is not part of this project"),
        (["users", "send_email", "--type", "noop"], "step name 'send_email' is not a name"),
        (["users", "9Lives", "--type", "noop"], "step name '9Lives' is not a name"),
        (["users", "Send-Email", "--type", "noop"], "step name 'Send-Email' is not a name"),
        (["users", "RegisterUser", "--type", "noop"], "a step named 'RegisterUser' exists already"),
        (["users", "X", "--type", "api"], "--type api needs --path, e.g. --path /orders"),
        (["users", "X", "--type", "event"], "--type event needs --subscribes"),
        (["users", "X", "--type", "cron"], "--type cron needs --cron"),
        (["users", "X", "--type", "event", "--subscribes", "t", "--path", "/x"], "--path goes"),
        (["users", "X", "--type", "cron", "--cron", "* * * * *", "--method", "GET"], "--method"),
        (["users", "X", "--type", "api", "--path", "/x", "--cron", "* * * * *"], "--cron goes"),
        (["users", "X", "--type", "api", "--path", "/x", "--subscribes", "t"], "--subscribes"),
        (["users", "X", "--type", "api", "--path", "x"], "path must start with '/'"),
        (["users", "X", "--type", "api", "--path", "/a b"], "path segment 'a b'"),
        (["users", "X", "--type", "api", "--path", "/x", "--method", "FETCH"], "method must be"),
        (["users", "X", "--type", "cron", "--cron", "every day"], "is not a valid cron"),
        (["users", "X", "--type", "task"], "invalid choice: 'task'"),
        (["users", "X"], "the following arguments are required: --type"),
    ],
)
def test_refusals_name_the_fix(untouched, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("startstep", *args)


@pytest.mark.parametrize(
    "name, snake",
    [
        ("SendWelcomeEmail", "send_welcome_email"),
        ("SendSMS", "send_sms"),
        ("SMSSender", "sms_sender"),
        ("Step2Go", "step2_go"),
        ("lower", "lower"),
    ],
)
def test_file_names_are_the_snake_case_of_the_step_name(name, snake):
    assert snake_case(name) == snake
