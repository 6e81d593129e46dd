import pytest

@pytest.fixture
def dummy() -> int:
    return 1
