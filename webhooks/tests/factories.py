import factory
from django.utils import timezone

from clinic.tests.factories import ClinicFactory
from webhooks import events
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """Written directly (the URL is not checked): create through services to test the rules."""

    class Meta:
        model = WebhookEndpoint

    clinic = factory.SubFactory(ClinicFactory)
    url = factory.Sequence(lambda n: f"https://hooks{n}.example.com/vaani")
    events = factory.LazyFunction(lambda: list(WebhookEvent.values))
    secret = "your-webhook-secret"


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    clinic = factory.SelfAttribute("endpoint.clinic")
    event_id = factory.LazyFunction(events.new_event_id)
    event_type = WebhookEvent.APPOINTMENT_CREATED
    payload = factory.LazyAttribute(
        lambda o: f'{{"id":"{o.event_id}","event":"{o.event_type}","data":{{}}}}'
    )
    next_attempt_at = factory.LazyFunction(timezone.now)
