"""A program of scripts/ loaded as a module, for the tests that call its functions (Python standard
library only): its file name (check-serverless.py) is no module name, so it cannot be imported.

    from script_module import load_script
    check_serverless = load_script("check-serverless.py")
"""

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_script(name):
    """scripts/<name>, a program whose file name is no module name, loaded as a module."""
    spec = importlib.util.spec_from_file_location(name[:-3].replace("-", "_"),
                                                  os.path.join(REPO, "scripts", name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
