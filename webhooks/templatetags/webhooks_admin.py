"""Admin pages' webhook notices (operators): the data comes from ``webhooks.selectors``."""

from django import template

from webhooks import selectors

register = template.Library()


@register.simple_tag
def automatically_disabled_webhooks(limit: int = 20) -> selectors.DisabledEndpoints:
    """``{% automatically_disabled_webhooks as disabled %}``: the endpoints Vaani switched off."""
    return selectors.automatically_disabled_endpoints(limit=limit)
