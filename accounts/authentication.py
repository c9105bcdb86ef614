from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.tokens import session_user, session_user_counted
from vaani.common.throttling import counted_early


class RevocableJWTAuthentication(JWTAuthentication):
    """Bearer access tokens whose login has not been signed out.

    The token's signature and expiry are checked by simplejwt; the session and the
    user (with the clinic every clinic API reads) come from ``session_user``, in one
    cache round trip when both are cached. When the view opened a rate-limit window
    (``vaani.common.throttling.open_window``), the token's user is counted in that same
    round trip.
    """

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        validated_token = self.get_validated_token(raw_token)
        user_id = validated_token.get("user_id")
        window = getattr(request, "rate_window", None)
        identity = f"user:{user_id}"
        counter = (window.key(identity), window.timeout) if window and user_id else None
        user = session_user_counted(
            validated_token.get("sid"),
            user_id,
            counter,
            on_count=lambda count: counted_early(request, identity, count),
        )
        return user, validated_token

    def get_user(self, validated_token):
        return session_user(validated_token.get("sid"), validated_token.get("user_id"))
