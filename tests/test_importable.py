import subprocess
import sys


def test_package_imports_before_django_setup():
    """`import django_mcp_scopes` must not need configured settings or an app registry."""
    code = "import django_mcp_scopes; print(django_mcp_scopes.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""}, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_fast_lane_imports_before_django_setup():
    """An asgi.py or wsgi.py imports it at the top, before get_*_application() sets Django up."""
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'example_project.settings'\n"
        "from django_mcp_scopes.mcp.serving import mcp_asgi_application, mcp_wsgi_application\n"
        "import example_project.asgi, example_project.wsgi\n"
        "print(type(example_project.asgi.application).__name__, type(example_project.wsgi.application).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["_ASGILane", "_WSGILane"]
