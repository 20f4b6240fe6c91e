"""The two pages, ``/`` (live camera) and ``/file`` (a video file), and their files in web/."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

WEB = Path(__file__).parent / "web"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def live_page() -> FileResponse:
    return FileResponse(WEB / "index.html")


@router.get("/file")
async def file_page() -> FileResponse:
    return FileResponse(WEB / "file.html")
