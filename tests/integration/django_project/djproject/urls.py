from django.urls import path
from shop import views

urlpatterns = [
    path("order/<int:n>/", views.order),
    path("order/<int:n>/rollback/", views.order_rolled_back),
]
