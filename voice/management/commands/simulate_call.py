"""Phone the clinic without a phone: synthesized speech into the real media stream.

    python manage.py simulate_call --clinic demo \
        --say "I want to book an appointment with Dr. Sharma tomorrow at 10 am" --say "yes"
"""

import time
import uuid
import warnings

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from clinic.models import Appointment, Clinic
from voice.models import CallLog
from voice.simulator import run_in_process


class Command(BaseCommand):
    help = "Simulates a phone call: offline speech in, the agent's dialog and bookings out."

    def add_arguments(self, parser):
        parser.add_argument("--clinic", default="demo", help="Clinic slug or id (default: demo).")
        parser.add_argument(
            "--say", action="append", default=[], help="What the caller says (repeat)."
        )
        parser.add_argument(
            "--lang", default="en", choices=["en", "hi", "hi-en"], help="Caller's language."
        )
        parser.add_argument(
            "--from", dest="caller", default="+919876543210", help="Caller's number."
        )
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="Seconds to wait for each reply."
        )

    def handle(self, *args, **options):
        clinic = self._clinic(options["clinic"])
        number = clinic.phone_numbers.values_list("number", flat=True).first()
        if not number:
            raise CommandError(f"{clinic} has no phone number to dial.")
        call_sid = "CAsim" + uuid.uuid4().hex[:27]
        self.stdout.write(f"Calling {clinic.name} ({number}) from {options['caller']} ...")
        started = time.monotonic()
        # The in-process ASGI app loads WhiteNoise, which warns when collectstatic has
        # not run (a development checkout); nothing here serves static files.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        caller = async_to_sync(self._run)(clinic, number, call_sid, options)
        self._report(caller, call_sid, time.monotonic() - started)

    @staticmethod
    def _clinic(key: str) -> Clinic:
        try:
            clinic = Clinic.objects.filter(slug=key).first()
        except DatabaseError as exc:  # a fresh checkout: no tables yet
            raise CommandError(
                f"The database is not ready ({exc}). Run `python3 dev.py serve` once, "
                "or `manage.py migrate` and `manage.py seed_demo`."
            ) from exc
        if clinic is None and key.isdigit():
            clinic = Clinic.objects.filter(pk=int(key)).first()
        if clinic is None:
            raise CommandError(f"No clinic {key!r}. Run `manage.py seed_demo` for the demo clinic.")
        return clinic

    async def _run(self, clinic, number, call_sid, options):
        return await run_in_process(
            clinic=clinic,
            caller_phone=options["caller"],
            sentences=options["say"],
            language=options["lang"],
            call_sid=call_sid,
            to_number=number,
            turn_timeout=options["timeout"],
        )

    def _report(self, caller, call_sid, seconds):
        for event in caller.log.events:
            if event.get("event") == "transcript":
                who = "Caller" if event["direction"] == "inbound" else "Agent "
                self.stdout.write(f"  {who}: {event['text']}")
        call = CallLog.objects.select_related("appointment_created").get(call_sid=call_sid)
        self.stdout.write("")
        self.stdout.write(
            f"Call {call_sid}: {call.status}, {seconds:.1f} s, language {call.language or '-'}"
        )
        self.stdout.write(f"Intents: {', '.join(call.intents_detected) or '-'}")
        self.stdout.write(f"Summary: {call.summary or '-'}")
        appointment = call.appointment_created
        if appointment is None:
            appointment = Appointment.objects.filter(call_sid=call_sid).order_by("-id").first()
        if appointment is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Appointment {appointment.pk}: {appointment.patient.name} with "
                    f"{appointment.doctor.name} at {appointment.scheduled_time:%Y-%m-%d %H:%M} UTC "
                    f"({appointment.status})"
                )
            )
        for number, turn in enumerate(call.latency.get("per_turn", []), start=1):
            self.stdout.write(
                f"Turn {number}: transcript {turn['transcript_ms']} ms, "
                f"reply {turn['reply_ms']} ms, first audio {turn['first_audio_ms']} ms "
                "(from the end of the caller's speech)"
            )
