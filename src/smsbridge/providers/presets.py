"""Presets for common providers, as each documents its API.

A preset is a partial credential document. :func:`apply_preset` lays the user's fields over it
(``auth``, ``response``, ``inbound`` and ``delivery_reports`` are merged key by key, so a user
gives only their secrets). JSONPath is used for form webhooks too: form fields become the keys
of a flat object, so ``$.MessageSid`` reads Twilio's ``MessageSid`` field.
Sources for each format are listed in ``docs/providers/``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from smsbridge.errors import InvalidInput

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

PRESETS: dict[str, dict[str, Any]] = {
    "sandbox": {
        "provider_name": "smsbridge sandbox",
        "provider_url": "sandbox://default",
        "auth": {"type": "none"},
        "content_type": JSON,
        "payload": {"from": "{{fromNumber}}", "to": "{{toNumber}}", "text": "{{message}}"},
        "response": {"message_id_path": "$.id"},
        "inbound": {
            "from_path": "$.from",
            "to_path": "$.to",
            "text_path": "$.text",
            "id_path": "$.id",
        },
        "delivery_reports": {
            "message_id_path": "$.id",
            "status_path": "$.status",
            "error_path": "$.error",
            "status_map": {
                "delivered": "delivered",
                "undelivered": "undelivered",
                "failed": "failed",
            },
        },
    },
    "twilio": {
        "provider_name": "Twilio",
        "provider_url": "https://api.twilio.com/2010-04-01/Accounts/{{appId}}/Messages.json",
        "auth": {"type": "basic"},
        "content_type": FORM,
        "payload": {
            "To": "{{toNumber}}",
            "From": "{{fromNumber}}",
            "Body": "{{message}}",
            "StatusCallback": "{{statusCallbackUrl}}",
        },
        "response": {"message_id_path": "$.sid"},
        "inbound": {
            "from_path": "$.From",
            "to_path": "$.To",
            "text_path": "$.Body",
            "id_path": "$.MessageSid",
        },
        "delivery_reports": {
            "message_id_path": "$.MessageSid",
            "status_path": "$.MessageStatus",
            "error_path": "$.ErrorCode",
            "status_map": {
                "accepted": "sent",
                "scheduled": "sent",
                "queued": "sent",
                "sending": "sent",
                "sent": "sent",
                "delivered": "delivered",
                "read": "delivered",
                # Some parts of a long message did not arrive: not the text that was sent.
                "partially_delivered": "undelivered",
                "undelivered": "undelivered",
                "failed": "failed",
                "canceled": "failed",
            },
        },
        "opt_out_error_codes": ["21610"],
    },
    "infobip": {
        "provider_name": "Infobip",
        "provider_url": "https://api.infobip.com/sms/3/messages",
        "auth": {"type": "bearer", "scheme": "App"},
        "content_type": JSON,
        "payload": {
            "messages": [
                {
                    "sender": "{{fromNumberDigits}}",
                    "destinations": [{"to": "{{toNumberDigits}}", "messageId": "{{messageId}}"}],
                    "content": {"text": "{{message}}"},
                    "webhooks": {"delivery": {"url": "{{statusCallbackUrl}}"}},
                }
            ]
        },
        "response": {"message_id_path": "$.messages[0].messageId"},
        "inbound": {
            "items_path": "$.results[*]",
            "from_path": "$.from",
            "to_path": "$.to",
            "text_path": "$.text",
            "id_path": "$.messageId",
        },
        "delivery_reports": {
            "items_path": "$.results[*]",
            "message_id_path": "$.messageId",
            "status_path": "$.status.groupName",
            "error_path": "$.error.name",
            "status_map": {
                "ACCEPTED": "sent",
                "PENDING": "sent",
                "DELIVERED": "delivered",
                "UNDELIVERABLE": "undelivered",
                "EXPIRED": "undelivered",
                "REJECTED": "failed",
            },
        },
        "opt_out_error_codes": [],
    },
    "sinch": {
        "provider_name": "Sinch",
        "provider_url": "https://us.sms.api.sinch.com/xms/v1/{{appId}}/batches",
        "auth": {"type": "bearer", "scheme": "Bearer"},
        "content_type": JSON,
        "payload": {
            "from": "{{fromNumber}}",
            "to": ["{{toNumber}}"],
            "body": "{{message}}",
            "type": "mt_text",
            "delivery_report": "per_recipient",
            "callback_url": "{{statusCallbackUrl}}",
        },
        "response": {"message_id_path": "$.id"},
        "inbound": {
            "from_path": "$.from",
            "to_path": "$.to",
            "text_path": "$.body",
            "id_path": "$.id",
        },
        "delivery_reports": {
            "message_id_path": "$.batch_id",
            "status_path": "$.status",
            "error_path": "$.code",
            "status_map": {
                "Queued": "sent",
                "Dispatched": "sent",
                "Delivered": "delivered",
                "Failed": "undelivered",
                "Expired": "undelivered",
                "Deleted": "undelivered",
                "Unknown": "undelivered",
                "Rejected": "failed",
                "Aborted": "failed",
                "Cancelled": "failed",
            },
        },
        "opt_out_error_codes": [],
    },
    "vonage": {
        "provider_name": "Vonage (SMS API)",
        "provider_url": "https://rest.nexmo.com/sms/json",
        "auth": {"type": "basic"},
        "content_type": FORM,
        "payload": {
            "from": "{{fromNumberDigits}}",
            "to": "{{toNumberDigits}}",
            "text": "{{message}}",
            "client-ref": "{{messageId}}",
            # GSM-7 text as "text" (160 characters a part), anything else as "unicode".
            "type": "{{encoding|GSM-7:text|UCS-2:unicode}}",
            "callback": "{{statusCallbackUrl}}",
        },
        # Vonage answers HTTP 200 to refusals; messages[0].status "0" alone means accepted.
        "response": {
            "message_id_path": "$.messages[0]['message-id']",
            "success_path": "$.messages[0].status",
            "success_values": ["0"],
        },
        "inbound": {
            "from_path": "$.msisdn",
            "to_path": "$.to",
            "text_path": "$.text",
            "id_path": "$.messageId",
        },
        "delivery_reports": {
            "message_id_path": "$.messageId",
            "status_path": "$.status",
            "error_path": "$['err-code']",
            "status_map": {
                "accepted": "sent",
                "buffered": "sent",
                "delivered": "delivered",
                "expired": "undelivered",
                "failed": "undelivered",
                "unknown": "undelivered",
                "rejected": "failed",
            },
        },
        "opt_out_error_codes": [],
    },
    "plivo": {
        "provider_name": "Plivo",
        "provider_url": "https://api.plivo.com/v1/Account/{{appId}}/Message/",
        "auth": {"type": "basic"},
        "content_type": JSON,
        "payload": {
            "src": "{{fromNumber}}",
            "dst": "{{toNumber}}",
            "text": "{{message}}",
            "type": "sms",
            "url": "{{statusCallbackUrl}}",
            "method": "POST",
            "log": "true",
            "trackable": False,
        },
        "response": {"message_id_path": "$.message_uuid[0]"},
        "inbound": {
            "from_path": "$.From",
            "to_path": "$.To",
            "text_path": "$.Text",
            "id_path": "$.MessageUUID",
        },
        "delivery_reports": {
            "message_id_path": "$.MessageUUID",
            "status_path": "$.Status",
            "error_path": "$.ErrorCode",
            "status_map": {
                "queued": "sent",
                "sent": "sent",
                "delivered": "delivered",
                "undelivered": "undelivered",
                "failed": "failed",
                "rejected": "failed",
            },
        },
        "opt_out_error_codes": ["200"],
    },
    "telnyx": {
        "provider_name": "Telnyx",
        "provider_url": "https://api.telnyx.com/v2/messages",
        "auth": {"type": "bearer", "scheme": "Bearer"},
        "content_type": JSON,
        "payload": {
            "from": "{{fromNumber}}",
            "to": "{{toNumber}}",
            "text": "{{message}}",
            "webhook_url": "{{statusCallbackUrl}}",
        },
        "response": {"message_id_path": "$.data.id"},
        "inbound": {
            "from_path": "$.data.payload.from.phone_number",
            "to_path": "$.data.payload.to[0].phone_number",
            "text_path": "$.data.payload.text",
            "id_path": "$.data.payload.id",
        },
        "delivery_reports": {
            "message_id_path": "$.data.payload.id",
            "status_path": "$.data.payload.to[0].status",
            "error_path": "$.data.payload.errors[0].code",
            "status_map": {
                "queued": "sent",
                "sending": "sent",
                "sent": "sent",
                "delivered": "delivered",
                "delivery_failed": "undelivered",
                "expired": "undelivered",
                "delivery_unconfirmed": "sent",
                "read": "delivered",
                "sending_failed": "failed",
            },
        },
        "opt_out_error_codes": ["40300"],
    },
}

_MERGED_KEYS = ("auth", "response", "inbound", "delivery_reports")

# Fields a preset cannot guess beyond the secrets: Infobip serves each account on its own
# base URL (https://<id>.api.infobip.com).
_EXTRA_NEEDS: dict[str, tuple[str, ...]] = {"infobip": ("provider_url",)}


def preset_needs(name: str) -> list[str]:
    """The fields a user must still give to create a working credential from preset ``name``."""
    preset = PRESETS[name]
    needs = ["name", *_EXTRA_NEEDS.get(name, ())]
    if "{{appId}}" in preset["provider_url"]:
        needs.append("provider_app_id")
    needs.extend(
        {
            "bearer": ["auth.token"],
            "basic": ["auth.username", "auth.password"],
            "api_key": ["auth.key"],
            "none": [],
        }[preset["auth"]["type"]]
    )
    return needs


def preset_names() -> list[str]:
    return sorted(PRESETS)


def apply_preset(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` laid over its ``preset`` (if any); the result still names the preset."""
    name = document.get("preset")
    if name is None:
        return dict(document)
    if not isinstance(name, str) or name not in PRESETS:
        raise InvalidInput.one("preset", f"must be one of: {', '.join(preset_names())}")
    merged = copy.deepcopy(PRESETS[name])
    for key, value in document.items():
        base = merged.get(key)
        if key in _MERGED_KEYS and isinstance(base, dict) and isinstance(value, Mapping):
            if key == "auth" and value.get("type", base.get("type")) != base.get("type"):
                merged[key] = dict(value)
            else:
                merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged
