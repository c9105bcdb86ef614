import os

from django.core.management.base import BaseCommand

from clinic.demo import seed_demo


class Command(BaseCommand):
    help = "Creates the demo clinic (doctors, hours, patients, appointments, calls). Idempotent."

    def handle(self, *args, **options):
        result = seed_demo(password=os.environ.get("DEMO_PASSWORD") or None)
        clinic = result["clinic"]
        self.stdout.write(
            self.style.SUCCESS(f"Demo clinic ready: {clinic.name} (dial +911234567890)")
        )
        self.stdout.write("Sign in (API, admin) as:")
        self.stdout.write(f"  username: {result['email']}")
        self.stdout.write(f"  password: {result['password']}")
        self.stdout.write(
            "  also reception@clinic.com (receptionist), priya.sharma@clinic.com (doctor)"
        )
        if result["generated"]:
            self.stdout.write("  (generated; set DEMO_PASSWORD to choose one)")
