import factory

from clinic.tests.factories import ClinicFactory, PatientFactory
from voice.models import CallLog, CallStatus


class CallLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallLog

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    call_sid = factory.Sequence(lambda n: f"CA{n:032d}")
    from_number = factory.SelfAttribute("patient.phone")
    to_number = "+911234567890"
    duration_seconds = 60
    status = CallStatus.COMPLETED
    transcript = "patient: I want to book an appointment"
    summary = "Booked an appointment"
    sentiment = "positive"
