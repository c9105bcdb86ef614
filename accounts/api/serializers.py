from rest_framework import serializers

from vaani.common.serializers import StrictSerializer


class LoginSerializer(StrictSerializer):
    username = serializers.CharField(
        max_length=254, help_text="The e-mail address you sign in with."
    )
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )


class RefreshSerializer(StrictSerializer):
    refresh_token = serializers.CharField()


class LogoutSerializer(StrictSerializer):
    refresh_token = serializers.CharField(required=False, allow_blank=True)


class ClinicBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    time_zone = serializers.CharField()


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=["owner", "admin", "receptionist", "doctor"])
    clinic = ClinicBriefSerializer(allow_null=True)


class TokenSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    refresh_token = serializers.CharField()
    user = UserSerializer()


class RefreshedTokenSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    refresh_token = serializers.CharField()
