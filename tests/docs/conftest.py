import pytest

from tests.docs.reading import Reader, copy_project, reader_env


@pytest.fixture
def reader(tmp_path):
    project = copy_project(tmp_path / "project")
    running = Reader(project, reader_env(project))
    yield running
    if running.server is not None:
        running.server.stop()
