from django.db import models


class Order(models.Model):
    n = models.IntegerField()

    class Meta:
        app_label = "shop"
