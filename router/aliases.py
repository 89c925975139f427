"""Event-name aliases from Meta, GA4 and the Segment spec, folded to canonical snake_case names."""

from __future__ import annotations

import re
from typing import Final

CANONICAL: Final = frozenset(
    {
        "page_view",
        "view_content",
        "search",
        "add_to_cart",
        "add_to_wishlist",
        "begin_checkout",
        "add_payment_info",
        "purchase",
        "lead",
        "sign_up",
        "subscribe",
        "start_trial",
        "contact",
        "schedule",
        "submit_application",
    }
)

ALIASES: Final[dict[str, str]] = {
    # Meta standard events
    "PageView": "page_view",
    "ViewContent": "view_content",
    "Search": "search",
    "AddToCart": "add_to_cart",
    "AddToWishlist": "add_to_wishlist",
    "InitiateCheckout": "begin_checkout",
    "AddPaymentInfo": "add_payment_info",
    "Purchase": "purchase",
    "Lead": "lead",
    "CompleteRegistration": "sign_up",
    "Subscribe": "subscribe",
    "StartTrial": "start_trial",
    "Contact": "contact",
    "Schedule": "schedule",
    "SubmitApplication": "submit_application",
    # GA4 recommended events
    "view_item": "view_content",
    "generate_lead": "lead",
    "add_shipping_info": "add_payment_info",
    # Segment e-commerce spec
    "Page Viewed": "page_view",
    "Product Viewed": "view_content",
    "Products Searched": "search",
    "Product Added": "add_to_cart",
    "Product Added to Wishlist": "add_to_wishlist",
    "Checkout Started": "begin_checkout",
    "Payment Info Entered": "add_payment_info",
    "Order Completed": "purchase",
    "Signed Up": "sign_up",
}
"""Alias -> canonical name; matched ignoring case, spaces, `_` and `-`."""


def fold_key(name: str) -> str:
    """The comparison key: lower-case letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


FOLDED: Final[dict[str, str]] = {
    **{fold_key(name): name for name in CANONICAL},
    **{fold_key(alias): name for alias, name in ALIASES.items()},
}


def canonical_name(name: str) -> str:
    """The canonical name for a known event or alias; a custom event keeps its name as sent."""
    return FOLDED.get(fold_key(name), name.strip())
