"""The web chat page (index.html, app.js, style.css), served by bot.channels.web; nothing from a CDN."""
