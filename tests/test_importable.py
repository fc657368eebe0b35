import subprocess
import sys


def test_package_imports_before_django_setup():
    """`import django_mcp_scopes` must not need configured settings or an app registry."""
    code = "import django_mcp_scopes; print(django_mcp_scopes.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""}, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
