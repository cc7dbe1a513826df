import pytest

from returns.models import ReturnStatus
from returns.services import ReceiveLineIn, ReturnLineIn, return_receive, return_request
from tests.returns.conftest import delivered

pytestmark = pytest.mark.django_db


def test_smoke(net, associate):
    order = delivered(("TEE-0", 2), ("TEE-1", 1))
    ret = return_request(
        order_number=order.number,
        lines=[ReturnLineIn("TEE-0", 1, "wrong_size"), ReturnLineIn("TEE-1", 1, "damaged")],
        method="in_store",
        email="a@example.com",
    )
    assert ret.status == ReturnStatus.REQUESTED
    ret = return_receive(
        number=ret.number,
        location=net.shibuya.code,
        lines=[ReceiveLineIn("TEE-0", 1, "resellable"), ReceiveLineIn("TEE-1", 1, "damaged")],
        user=associate,
    )
    assert ret.status == ReturnStatus.RECEIVED
    assert ret.refunds.get().amount == 3960
