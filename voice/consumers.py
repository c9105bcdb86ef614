"""The Twilio Media Streams socket (§9): ``WS /api/v1/voice/stream/{call_sid}``.

Thin on purpose: it checks the handshake, turns Twilio's JSON events into calls on
a ``voice.pipeline.conversation.Conversation`` and finalizes the call log. Audio
never touches the ORM; the database is reached only through services run on the
call's own database thread (``runtime.on_db_thread``).

Protocol in: ``connected``, ``start``, ``media``, ``mark``, ``dtmf``, ``stop``.
Out: ``media`` (8 kHz mu-law, base64, 20 ms, paced), ``mark``, ``clear``, and the
custom ``session_state`` / ``transcript`` events, which also go to the clinic's
channel group (``clinic_<id>_calls``) for the front-desk UI.
"""

import asyncio
import json
import logging
import statistics

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from voice import runtime, services
from voice.pipeline.conversation import Conversation, ConversationConfig
from voice.telephony import get_telephony

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10
MAX_BAD_MESSAGES = 50  # a stream sending only garbage is ended, politely
MAX_MESSAGE_BYTES = 64_000

CLOSE_REFUSED = 4403
CLOSE_NO_START = 4408
CLOSE_GARBAGE = 4400


def clinic_group(clinic_id: int) -> str:
    return f"clinic_{clinic_id}_calls"


class MediaStreamConsumer(AsyncWebsocketConsumer):
    # Publish-only: the socket never listens on the channel layer, so a Redis outage
    # loses live UI events (logged) but never the call itself.
    channel_layer_alias = "media-stream-does-not-subscribe"

    # --- dispatch: 50 messages a second per call, none of them may touch a thread ------

    async def __call__(self, scope, receive, send):
        """Channels' loop without its per-message costs (the socket hears only Twilio).

        The stock ``AsyncConsumer`` wraps every message in a new task
        (``await_many_dispatch``, made to listen to a channel layer as well) and, before
        every handler, runs ``close_old_connections`` through ``sync_to_async``: a hop
        to the process's single thread-sensitive worker and back, 50 times a second per
        call, queued behind any other call's database work (the agent, call logs).
        With 25 calls that hop alone held inbound audio up by seconds.  This consumer
        reaches the database only on its call's own thread (``runtime.on_db_thread``:
        Channels' ``database_sync_to_async`` with an executor), which closes stale
        connections in that thread itself, so the hop bought nothing.
        """
        self.scope = scope
        self.channel_layer = None  # publish-only (see channel_layer_alias)
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Inbound frames first: they are nearly all of the traffic.
        if message["type"] == "websocket.receive":
            await self.receive(text_data=message.get("text"), bytes_data=message.get("bytes"))
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        await self.disconnect(message.get("code"))
        raise StopConsumer()

    async def connect(self):
        runtime.prepare_process_for_calls()
        runtime.call_started()
        self.db_thread = runtime.borrow_db_thread()  # this call's database work, in order
        self.call_sid = self.scope["url_route"]["kwargs"]["call_sid"]
        self.call_log = None
        self.agent = None
        self.conversation: Conversation | None = None
        self.bad_messages = 0
        self.finished = False
        self._media_prefix: dict[str, str] = {}
        await self.accept()
        self._start_timer = asyncio.get_running_loop().call_later(
            START_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self._give_up(CLOSE_NO_START))
        )

    async def receive(self, text_data=None, bytes_data=None):
        message = self._parse(text_data)
        if message is None:
            self.bad_messages += 1
            if self.bad_messages >= MAX_BAD_MESSAGES:
                logger.warning("Call %s: stream sent only malformed messages", self.call_sid)
                await self._give_up(CLOSE_GARBAGE)
            return
        handler = self._HANDLERS.get(message.get("event"))
        if handler is None:
            self.bad_messages += 1
            return
        try:
            await handler(self, message)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.bad_messages += 1  # a well-formed JSON message of the wrong shape

    async def disconnect(self, code):
        self._start_timer.cancel()
        try:
            await self._finish("socket closed")
        finally:
            runtime.return_db_thread(self.db_thread)
            runtime.call_ended()
            # The conversation holds this consumer's bound methods (its callbacks) and the
            # consumer holds it: a cycle, and with it the call's VAD, agent, turns and
            # call log, that only the garbage collector could free, in a full collection
            # once the call had lived long enough to reach the oldest generation.
            # Dropped here, the call's objects go when their last reference does.
            self.conversation = self.agent = self.call_log = None

    # --- Twilio events -----------------------------------------------------------------

    @staticmethod
    def _parse(text_data) -> dict | None:
        if not text_data or len(text_data) > MAX_MESSAGE_BYTES:
            return None
        try:
            message = json.loads(text_data)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    async def _ignore(self, message):
        return None

    async def _on_start(self, message):
        if self.conversation is not None or self.finished:
            return  # a second start is out of order: ignored
        # Twilio nests the details under "start"; §9.1 of our reference shows them flat.
        start = message.get("start") if isinstance(message.get("start"), dict) else message
        call_sid = start.get("callSid") or message.get("callSid")
        stream_sid = start.get("streamSid") or message.get("streamSid") or ""
        parameters = start.get("customParameters") or {}
        if call_sid != self.call_sid or not isinstance(parameters, dict):
            await self._refuse("call SID does not match the stream URL")
            return
        try:
            self.call_log = await self._db(services.claim_stream)(
                call_sid=call_sid, token=str(parameters.get("token", ""))
            )
        except services.StreamRefused as exc:
            await self._refuse(str(exc))
            return
        self._start_timer.cancel()
        clinic = self.call_log.clinic
        self.group = clinic_group(clinic.pk)
        self.agent = await self._db(runtime.make_agent)(
            clinic, self.call_log.from_number, self.call_log.call_sid
        )
        # On the call's database thread (it reads the clinic's doctors), where
        # connections are closed after each job: from a thread of asyncio's default
        # pool every call left an open database connection behind (Django's connections
        # are per context, and to_thread copies the caller's), freed only by the garbage
        # collector, with the reference cycles of its wrapper.
        stt = await self._db(_build_stt)(clinic)
        self.conversation = Conversation(
            stt=stt,
            tts=runtime.text_to_speech(),
            vad=runtime.new_vad(),
            agent=runtime.AgentAdapter(self.agent, self.db_thread),
            send_twilio=self._send_json,
            send_media=self._send_media,
            publish=self._publish,
            on_hangup=self._hang_up,
            on_transfer=self._transfer,
            language=getattr(self.agent, "language", "") or "hi-en",
            config=ConversationConfig(idle_timeout_s=settings.VOICE_IDLE_TIMEOUT_SECONDS),
        )
        await self.conversation.start(stream_sid)

    async def _on_media(self, message):
        if self.conversation is None:
            return  # media before start: nothing to attach it to
        media = message["media"]
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return
        await self.conversation.feed_media(media["payload"])

    async def _on_mark(self, message):
        if self.conversation is not None:
            await self.conversation.on_mark(str(message["mark"]["name"]))

    async def _on_dtmf(self, message):
        if self.conversation is not None:
            await self.conversation.feed_dtmf(str(message["dtmf"]["digit"]))

    async def _on_stop(self, message):
        await self._finish("caller hung up")
        await self.close()

    # Twilio's event -> handler (functions, not bound methods: a dict of those on the
    # instance would be a reference cycle per call).
    _HANDLERS = {
        "connected": _ignore,
        "start": _on_start,
        "media": _on_media,
        "mark": _on_mark,
        "dtmf": _on_dtmf,
        "stop": _on_stop,
    }

    def _db(self, fn):
        return runtime.on_db_thread(fn, self.db_thread)

    # --- outbound ----------------------------------------------------------------------------

    async def _send_json(self, payload: dict) -> None:
        await self.base_send({"type": "websocket.send", "text": json.dumps(payload)})

    async def _send_media(self, stream_sid: str, payload: str) -> None:
        """One outbound audio frame: the JSON text of ``{"event": "media", "streamSid",
        "media": {"payload"}}`` put together directly (base64 needs no escaping)."""
        prefix = self._media_prefix.get(stream_sid)
        if prefix is None:
            prefix = self._media_prefix[stream_sid] = (
                '{"event":"media","streamSid":' + json.dumps(stream_sid) + ',"media":{"payload":"'
            )
        await self.base_send({"type": "websocket.send", "text": prefix + payload + '"}}'})

    async def _publish(self, event: dict) -> None:
        if settings.VOICE_STREAM_CUSTOM_EVENTS:
            await self._send_json(event)
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(
                self.group, {"type": "call.event", "call_sid": self.call_sid, "event": event}
            )

    async def _hang_up(self) -> None:
        await asyncio.to_thread(get_telephony().hangup, self.call_sid)
        await self._finish("agent ended the call")
        await self.close()

    async def _transfer(self, reply) -> None:
        clinic = self.call_log.clinic
        if not clinic.front_desk_phone:
            await self._hang_up()
            return
        await asyncio.to_thread(
            get_telephony().transfer,
            self.call_sid,
            number=clinic.front_desk_phone,
            text="",
            language=reply.language,
        )
        await self._finish("transferred to the front desk")

    # --- ending --------------------------------------------------------------------------------

    async def _refuse(self, reason: str) -> None:
        logger.warning("Call %s: stream refused: %s", self.call_sid, reason)
        self.finished = True  # nothing of ours to finalize: the stream never belonged to us
        await self.close(code=CLOSE_REFUSED)

    async def _give_up(self, code: int) -> None:
        await self._finish(
            "stream ended without a conversation" if self.conversation is None else "bad stream"
        )
        await self.close(code=code)

    async def _finish(self, reason: str) -> None:
        """Finalizes the call log exactly once, however the call ended."""
        if self.finished:
            return
        self.finished = True
        if self.conversation is None or self.call_log is None:
            return
        result = await self.conversation.close(reason)
        outcome = services.CallOutcome(
            turns=result.turns,
            language=result.language,
            latency=latency_summary(result),
            providers={
                **runtime.provider_names(),
                # Cloud providers: who really served, fallbacks to offline, breaker states.
                **runtime.provider_report(
                    getattr(self.conversation, "stt", None), getattr(self.conversation, "tts", None)
                ),
                "agent": getattr(self.agent, "kind", "rules"),
            },
        )
        if self.agent is not None:
            outcome.summary, outcome.sentiment, outcome.intents = await self._db(_agent_report)(
                self.agent
            )
            outcome.appointment_id = getattr(self.agent, "appointment_created", None)
            outcome.patient_id = getattr(self.agent, "patient_id", None)
        await self._db(services.finalize_call)(call_sid=self.call_sid, outcome=outcome)


def _build_stt(clinic):
    return runtime.speech_to_text(clinic)


def _agent_report(agent) -> tuple[str, str, list[str]]:
    return agent.summary(), agent.sentiment(), list(agent.intents_detected)


def latency_summary(result) -> dict:
    totals = sorted(t.total_ms for t in result.latencies if t.total_ms is not None)

    def pct(p: float):
        if not totals:
            return None
        return round(totals[min(len(totals) - 1, round(p * (len(totals) - 1)))])

    return {
        "turns": len(result.latencies),
        "turn_p50_ms": round(statistics.median(totals)) if totals else None,
        "turn_p95_ms": pct(0.95),
        "turn_max_ms": round(totals[-1]) if totals else None,
        "per_turn": [
            {
                "transcript_ms": round(t.transcript_ms),
                "reply_ms": round(t.reply_ms),
                "first_audio_ms": round(t.first_audio_ms) if t.first_audio_ms is not None else None,
                "stt_ms": round(t.stt_ms),
                "agent_ms": round(t.agent_ms),
            }
            for t in result.latencies
        ],
        "barge_ins": result.barge_ins,
        "late_frames": result.late_frames,
        "frames_sent": result.frames_sent,
        "end_reason": result.end_reason,
    }
