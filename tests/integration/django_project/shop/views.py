"""Views that enqueue inside a transaction: the native task through `enqueue_in` when the
storage is Django's own PostgreSQL database (else on commit), the djhuey one on commit."""

import os

from django.db import transaction
from django.http import HttpResponse

from scoter.contrib.django import enqueue_in
from shop.models import Order
from shop.tasks import send_receipt, ship


class Rollback(Exception):
    pass


def _order(n):
    Order.objects.create(n=n)
    if os.environ.get("DJANGO_PG_SCHEMA"):
        enqueue_in(send_receipt.s(n))
    else:
        transaction.on_commit(lambda: send_receipt(n))
    ship(n)


def order(request, n):
    with transaction.atomic():
        _order(n)
    return HttpResponse("ok")


def order_rolled_back(request, n):
    try:
        with transaction.atomic():
            _order(n)
            raise Rollback()
    except Rollback:
        return HttpResponse("rolled back")
