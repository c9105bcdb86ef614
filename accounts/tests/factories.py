import factory

from accounts.models import Role, User

DEFAULT_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"staff{n}@clinic.test")
    username = factory.SelfAttribute("email")
    first_name = "Asha"
    last_name = factory.Sequence(lambda n: f"Staff{n}")
    clinic = factory.SubFactory("clinic.tests.factories.ClinicFactory")
    role = Role.RECEPTIONIST
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()
