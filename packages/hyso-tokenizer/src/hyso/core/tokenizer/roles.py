"""Role ids of special tokens, shared by both tokenizers."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SpecialRoles"]


class SpecialRoles:
    """``token_id(role)`` for any role, and the usual five roles as properties.

    A subclass provides ``role_ids`` (role -> id). The properties are ``None``
    when the tokenizer has no such special token; ``token_id`` raises instead.
    """

    @property
    def role_ids(self) -> Mapping[str, int]:
        """Role -> id of every special token."""
        raise NotImplementedError

    def token_id(self, role: str) -> int:
        """The id of the special token with ``role``; a ValueError when there is none."""
        found = self.role_ids.get(role)
        if found is None:
            known = ", ".join(self.role_ids) or "none"
            raise ValueError(
                f"this needs a {role!r} special token, and this tokenizer has none "
                f"(its special token roles: {known})"
            )
        return found

    @property
    def pad_token_id(self) -> int | None:
        """Id of the ``pad`` special token, or None."""
        return self.role_ids.get("pad")

    @property
    def bos_token_id(self) -> int | None:
        """Id of the ``bos`` special token, or None."""
        return self.role_ids.get("bos")

    @property
    def eos_token_id(self) -> int | None:
        """Id of the ``eos`` special token, or None."""
        return self.role_ids.get("eos")

    @property
    def unk_token_id(self) -> int | None:
        """Id of the ``unk`` special token, or None."""
        return self.role_ids.get("unk")

    @property
    def mask_token_id(self) -> int | None:
        """Id of the ``mask`` special token, or None."""
        return self.role_ids.get("mask")
