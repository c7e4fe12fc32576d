"""The private copy a test app runs in: the project's own data stays out, packages' data in."""

from tests.support.servers import PROJECT_ROOT, _not_copied


def test_the_projects_data_folder_and_databases_stay_out_of_the_copy() -> None:
    assert _not_copied(str(PROJECT_ROOT), ["data", "stream_chat", ".git", "x.db"]) == {
        "data",
        ".git",
        "x.db",
    }


def test_a_packages_own_data_folder_is_copied() -> None:
    # @babel/helper-globals keeps its tables in data/: without them the production build fails.
    package = PROJECT_ROOT / ".web" / "node_modules" / "@babel" / "helper-globals"
    assert _not_copied(str(package), ["data", "package.json"]) == set()
