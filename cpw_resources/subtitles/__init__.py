"""Subtitles: style rules, cues, SRT/WebVTT files and quality scores."""
