from conftest import Ports, wait_for

def test_x(dummy: int) -> None:
    """x."""
    assert dummy == 1 and Ports and wait_for
