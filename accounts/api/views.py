"""``/api/v1/auth``: sign in, refresh, sign out, who am I (§2.1)."""

from django.conf import settings
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated

from accounts.api.serializers import (
    LoginSerializer,
    LogoutSerializer,
    RefreshedTokenSerializer,
    RefreshSerializer,
    TokenSerializer,
    UserSerializer,
)
from accounts.models import User
from accounts.tokens import issue_tokens, revoke_session, rotate_refresh_token, user_payload
from vaani.common.exceptions import ApiError
from vaani.common.responses import ApiResponse
from vaani.common.views import ApiView


class InvalidCredentials(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"
    default_message = "Invalid username or password"


class LoginView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]
    rate_limit_category = "auth"

    @extend_schema(request=LoginSerializer, responses={200: TokenSerializer}, tags=["auth"])
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"].strip()
        user = (
            User.objects.select_related("clinic")
            .filter(Q(username__iexact=username) | Q(email__iexact=username))
            .first()
        )
        password = serializer.validated_data["password"]
        if user is None:
            User().set_password(password)  # hash anyway: unknown and known users take as long
            raise InvalidCredentials()
        if not user.check_password(password) or not user.is_active:
            raise InvalidCredentials()
        return ApiResponse(issue_tokens(user), message="Signed in")


class RefreshView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]
    rate_limit_category = "auth"

    @extend_schema(
        request=RefreshSerializer, responses={200: RefreshedTokenSerializer}, tags=["auth"]
    )
    def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        access, refresh = rotate_refresh_token(serializer.validated_data["refresh_token"])
        return ApiResponse(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": settings.ACCESS_TOKEN_LIFETIME_SECONDS,
                "refresh_token": refresh,
            }
        )


class LogoutView(ApiView):
    permission_classes = [IsAuthenticated]
    rate_limit_category = "auth"

    @extend_schema(request=LogoutSerializer, responses={200: None}, tags=["auth"])
    def post(self, request):
        # No body is {}; a body of null, [] or "" is not an object and is refused.
        serializer = LogoutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        revoke_session(
            user=request.user,
            sid=request.auth.get("sid") if request.auth else None,
            raw_refresh=serializer.validated_data.get("refresh_token") or None,
        )
        return ApiResponse(message="Signed out")


class MeView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserSerializer}, tags=["auth"])
    def get(self, request):
        return ApiResponse(user_payload(request.user))
