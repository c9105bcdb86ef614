from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.models import User
from accounts.tokens import is_session_revoked


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens whose login has not been signed out.

    Loads the user with the clinic in the same query, since every clinic API
    reads it.
    """

    def get_validated_token(self, raw_token):
        token = super().get_validated_token(raw_token)
        if is_session_revoked(token.get("sid")):
            raise InvalidToken("This session has been signed out")
        return token

    def get_user(self, validated_token):
        user_id = validated_token.get("user_id")
        if user_id is None:
            raise InvalidToken("Token contained no recognizable user identification")
        user = User.objects.select_related("clinic").filter(pk=user_id).first()
        if user is None or not user.is_active:
            raise InvalidToken("User not found or inactive")
        return user
