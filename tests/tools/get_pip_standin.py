# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stands in for ansible-test's pip bootstrap script where it cannot be downloaded.

ansible-test runs ``get-pip.py <pip options> pip==X`` in each new sanity virtual environment.
This does the same with what Python ships: ensurepip, then pip itself from the configured index.
It is installed only where the cache lacks the real script (see tests/quality/test_tools.py).
"""

import os
import subprocess
import sys


def main() -> None:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    # ensurepip sets these to hide the machine's pip configuration; the install below needs it.
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_CONFIG_FILE", "ENSUREPIP_OPTIONS")}
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args], env=env)


if __name__ == "__main__":
    main()
