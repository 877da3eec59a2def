"""``manage.py seed_demo``: fill the database with deterministic sample users and orders."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from demo.shop.models import Order, Product

#: Seeded users' usernames start with this, so that ``--force`` only replaces them.
USERNAME_PREFIX = "demo-"
DAYS = 730
BATCH_SIZE = 1000

# fmt: off
FIRST_NAMES = [
    "Ada", "Alan", "Alice", "Amir", "Ana", "Ben", "Carla", "Chen", "Dana", "David", "Elena",
    "Emil", "Eva", "Farah", "Grace", "Hana", "Ines", "Ivan", "Jamal", "Jonas", "Kai", "Lea",
    "Leo", "Lina", "Luca", "Maya", "Mia", "Nadia", "Noah", "Omar", "Paula", "Rosa", "Sami",
    "Sara", "Tom", "Uma", "Vera", "Yusuf", "Zoe",
]
LAST_NAMES = [
    "Adams", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito",
    "Jensen", "Kowalski", "Lopez", "Martin", "Novak", "Okafor", "Petrov", "Quinn", "Rossi",
    "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zimmermann",
]
ADJECTIVES = [
    "Classic", "Compact", "Deluxe", "Golden", "Handmade", "Little", "Modern", "Nordic",
    "Pocket", "Rustic", "Smart", "Vintage",
]
# fmt: on

#: Per category: product nouns, price range, and relative demand per month (Jan..Dec).
CATALOGUE: dict[str, tuple[str, tuple[int, int], tuple[float, ...]]] = {
    Product.Category.BOOKS: (
        "Novel, Cookbook, Atlas, Biography, Poetry, Thriller, Comic, Essay",
        (8, 45),
        (1.0, 0.8, 0.8, 0.9, 0.9, 1.1, 1.3, 1.3, 0.9, 0.9, 1.1, 1.8),
    ),
    Product.Category.GAMES: (
        "Board Game, Puzzle, Card Game, Console, Controller, Dice Set, Quiz, Strategy Game",
        (12, 180),
        (0.9, 0.7, 0.7, 0.7, 0.7, 0.8, 0.9, 0.9, 0.9, 1.1, 1.6, 2.6),
    ),
    Product.Category.MUSIC: (
        "Vinyl, Headphones, Ukulele, Songbook, Speaker, Metronome, Guitar Strings, Harmonica",
        (6, 180),
        (1.0, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.7),
    ),
    Product.Category.GARDEN: (
        "Seeds, Hose, Rake, Planter, Pruner, Lantern, Bird Feeder, Hammock",
        (5, 140),
        (0.3, 0.4, 1.0, 1.9, 2.2, 2.0, 1.7, 1.2, 0.8, 0.5, 0.3, 0.4),
    ),
    Product.Category.KITCHEN: (
        "Kettle, Knife, Teapot, Skillet, Grinder, Mixer, Cutting Board, Apron",
        (10, 260),
        (1.0, 0.9, 0.9, 0.9, 1.0, 0.9, 0.9, 0.9, 1.0, 1.1, 1.4, 1.9),
    ),
}

#: Relative activity per hour of the day (0..23).
USER_HOURS = (
    1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 8, 8, 8, 8, 9, 11, 12, 12, 10, 6, 3,
)  # fmt: skip
ORDER_HOURS = (
    2, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 11, 10, 8, 8, 8, 9, 11, 13, 14, 12, 8, 4,
)  # fmt: skip
QUANTITIES = (1, 2, 3, 4, 5)
QUANTITY_WEIGHTS = (70, 18, 7, 3, 2)


@contextmanager
def mqueue_muted(models: Sequence[type[Model]]) -> Iterator[None]:
    """Disconnect django-mqueue's per-row receivers while deleting in bulk."""
    from mqueue.signals import mmessage_create, mmessage_delete, mmessage_update

    receivers = [
        (post_save, mmessage_create),
        (post_save, mmessage_update),
        (post_delete, mmessage_delete),
    ]
    muted = [
        (signal, receiver, model)
        for model in models
        for signal, receiver in receivers
        if signal.disconnect(receiver, sender=model)
    ]
    try:
        yield
    finally:
        for signal, receiver, model in muted:
            signal.connect(receiver, sender=model)


def record_event(model: type[Model], name: str) -> None:
    """One mqueue event for a bulk change, so that chartbuild sees the model changed.

    ``bulk_create`` and muted deletes send no signals, hence no per-row events.
    """
    from mqueue.models import MEvent

    MEvent.objects.create(model=model, name=name, event_class=f"{model.__name__} edited")


def day_weights(days: int, growth: float, seasonal: bool) -> list[float]:
    """Relative activity of each of the last ``days`` days (oldest first)."""
    today = timezone.now().date()
    weights = []
    for offset in range(days):
        day = today - timedelta(days=days - offset)
        weight = 1 + growth * offset / days
        if day.weekday() >= 5:
            weight *= 0.8
        if seasonal:
            # A smooth yearly wave peaking before Christmas, plus the Black Friday rush.
            weight *= 1 + 0.25 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 350) / 365)
            if (day.month == 11 and day.day >= 22) or (day.month == 12 and day.day <= 20):
                weight *= 1.5
        weights.append(weight)
    return weights


def sample_times(
    rng: random.Random, count: int, weights: list[float], hours: Sequence[int]
) -> list[datetime]:
    """``count`` sorted timestamps over the last ``len(weights)`` days, before today."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=len(weights))
    offsets = rng.choices(range(len(weights)), weights=weights, k=count)
    picked_hours = rng.choices(range(24), weights=hours, k=count)
    return sorted(
        start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
        for day, hour in zip(offsets, picked_hours, strict=True)
    )


class Command(BaseCommand):
    help = (
        "Fill the database with deterministic demo data: users, products and orders over "
        "the last two years. Does nothing if there are users or orders, unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=2500, help="users to create")
        parser.add_argument("--orders", type=int, default=25000, help="orders to create")
        parser.add_argument("--seed", type=int, default=42, help="random seed")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace existing orders, products and seeded users",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        n_users: int = options["users"]
        n_orders: int = options["orders"]
        if n_users < 0 or n_orders < 0:
            raise CommandError("--users and --orders must not be negative")
        users_before = User.objects.count()
        orders_before = Order.objects.count()
        if (users_before or orders_before) and not options["force"]:
            self.stdout.write(
                f"The database already has {users_before} users and {orders_before} orders; "
                "nothing seeded (use --force to replace the demo data)."
            )
            return

        started = time.monotonic()
        rng = random.Random(options["seed"])
        with transaction.atomic():
            if users_before or orders_before:
                self.clear()
            users = self.create_users(rng, n_users)
            products = self.create_products(rng)
            orders = self.create_orders(rng, n_orders, products)
            record_event(User, f"seed_demo: {users} users")
            record_event(Product, f"seed_demo: {len(products)} products")
            record_event(Order, f"seed_demo: {orders} orders")
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {users} users, {len(products)} products and {orders} orders "
                f"in {time.monotonic() - started:.1f}s."
            )
        )

    def clear(self) -> None:
        """Delete all orders and products and the seeded users, without per-row events."""
        seeded_users = User.objects.filter(username__startswith=USERNAME_PREFIX)
        with mqueue_muted([User, Product, Order]):
            _, orders = Order.objects.all().delete()
            _, products = Product.objects.all().delete()
            _, users = seeded_users.delete()
        self.stdout.write(
            f"Deleted {orders.get(Order._meta.label, 0)} orders, "
            f"{products.get(Product._meta.label, 0)} products and "
            f"{users.get(User._meta.label, 0)} seeded users."
        )

    def create_users(self, rng: random.Random, count: int) -> int:
        joined = sample_times(rng, count, day_weights(DAYS, growth=3.0, seasonal=False), USER_HOURS)
        now = timezone.now()
        users = []
        for number, date_joined in enumerate(joined, start=1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            is_active = rng.random() < 0.93
            last_login = None
            if is_active and rng.random() < 0.8:
                last_login = date_joined + (now - date_joined) * rng.random()
            users.append(
                User(
                    username=f"{USERNAME_PREFIX}{first.lower()}-{number:05d}",
                    first_name=first,
                    last_name=last,
                    email=f"{first.lower()}.{last.lower()}.{number}@example.com",
                    password="!",  # an unusable password, without hashing thousands
                    is_staff=rng.random() < 0.015,
                    is_active=is_active,
                    date_joined=date_joined,
                    last_login=last_login,
                )
            )
        User.objects.bulk_create(users, batch_size=BATCH_SIZE)
        return len(users)

    def create_products(self, rng: random.Random) -> list[Product]:
        products = []
        for category, (nouns, (low, high), _) in CATALOGUE.items():
            names = nouns.split(", ")
            for adjective, noun in zip(rng.sample(ADJECTIVES, len(names)), names, strict=True):
                cents = rng.randrange(low * 100, high * 100)
                price = Decimal(cents // 100) + Decimal("0.99") if cents > 200 else Decimal("1.99")
                products.append(Product(name=f"{adjective} {noun}", category=category, price=price))
        Product.objects.bulk_create(products, batch_size=BATCH_SIZE)
        return list(Product.objects.order_by("id"))

    def create_orders(self, rng: random.Random, count: int, products: list[Product]) -> int:
        if not products:
            return 0
        created = sample_times(
            rng, count, day_weights(DAYS, growth=1.5, seasonal=True), ORDER_HOURS
        )
        # Customers are users who had joined when they ordered.
        customers = list(User.objects.order_by("date_joined").values_list("date_joined", "id"))
        joined = [date_joined for date_joined, _ in customers]
        # Some products sell much better than others, and categories have their seasons.
        popularity = [1 / (rank + 1) ** 0.8 for rank in range(len(products))]
        rng.shuffle(popularity)
        month_weights = {
            month: list(
                itertools.accumulate(
                    weight * CATALOGUE[product.category][2][month - 1]
                    for product, weight in zip(products, popularity, strict=True)
                )
            )
            for month in range(1, 13)
        }
        now = timezone.now()
        orders: list[Order] = []
        made = 0
        for created_at in created:
            product = rng.choices(products, cum_weights=month_weights[created_at.month])[0]
            quantity = rng.choices(QUANTITIES, weights=QUANTITY_WEIGHTS)[0]
            joined_before = bisect.bisect_left(joined, created_at)
            customer_id = None
            if joined_before and rng.random() > 0.04:
                customer_id = customers[rng.randrange(joined_before)][1]
            orders.append(
                Order(
                    product=product,
                    customer_id=customer_id,
                    status=self.status(rng, now - created_at),
                    quantity=quantity,
                    amount=product.price * quantity,
                    created_at=created_at,
                )
            )
            if len(orders) == BATCH_SIZE:  # in batches: --orders 10000000 fits in memory
                Order.objects.bulk_create(orders)
                made, orders = made + len(orders), []
        Order.objects.bulk_create(orders)
        return made + len(orders)

    @staticmethod
    def status(rng: random.Random, age: timedelta) -> str:
        if rng.random() < 0.06:
            return Order.Status.CANCELLED
        if age < timedelta(days=2):
            return rng.choice([Order.Status.PENDING, Order.Status.PAID])
        if age < timedelta(days=7):
            return rng.choice([Order.Status.PAID, Order.Status.SHIPPED])
        return Order.Status.SHIPPED
