import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # references.py


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_report_header(config):
    import mtile

    return f"mtile {mtile.__version__} from {mtile.__file__}, library {mtile.library_path()}"
