from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.tokens import session_user


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens whose login has not been signed out.

    The token's signature and expiry are checked by simplejwt; the session and the
    user (with the clinic every clinic API reads) come from ``session_user``, in one
    cache round trip when both are cached.
    """

    def get_user(self, validated_token):
        return session_user(validated_token.get("sid"), validated_token.get("user_id"))
