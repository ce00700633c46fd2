"""Stand-in for the get-pip.py bootstrap script that ``ansible-test --venv`` downloads.

mnaas.backup stand-in (``make sanity`` replaces a cached copy that carries this marker).

ansible-test creates each sanity-test virtualenv without pip, then downloads
``get-pip-<version>.py`` from ansible's CI file host to put pip in it. That host is not reachable
from our machines, but ansible-test first looks for ``~/.ansible/test/cache/get_pip_<version>.py``;
``make sanity`` copies this file there. Like get-pip.py it takes pip's ``install`` arguments
(``pip==24.2 --no-setuptools --no-wheel``); it runs the pip wheel bundled with the running
Python's ``ensurepip`` to install the requested pip from PyPI.
"""

from __future__ import annotations

import ensurepip
import glob
import os
import sys

# get-pip.py options that are not pip options.
GET_PIP_ONLY_OPTIONS = frozenset(("--no-setuptools", "--no-wheel"))


def main() -> int:
    """Install the pip version named on the command line into the running Python."""
    bundled = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))
    if not bundled:
        sys.stderr.write(f"{sys.executable}: ensurepip has no bundled pip wheel\n")
        return 1
    sys.path.insert(0, bundled[-1])
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    return pip_main(["install", *args])


if __name__ == "__main__":
    sys.exit(main())
