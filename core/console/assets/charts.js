// Small SVG charts for the console (no charting library): a bar per minute, a second series
// drawn over the first (failures over runs, dead letters over accepted events), and a title
// that says what the bars count. Values come from GET /api/stats.

const SVG = "http://www.w3.org/2000/svg";

function node(tag, attributes, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

/** Bars of `series[0]`, with `series[1]` (if any) over them in its own colour. */
export function barChart(series, { width = 260, height = 48, label = "", colors = ["#3b5bdb", "#c92a2a"] } = {}) {
  const count = series[0]?.length ?? 0;
  const max = Math.max(1, ...series.flat());
  const step = count ? width / count : width;
  const bars = [];
  series.forEach((values, s) => {
    values.forEach((value, i) => {
      if (!value) return;
      const barHeight = Math.max(1, (value / max) * (height - 2));
      bars.push(node("rect", { x: (i * step).toFixed(2), y: (height - barHeight).toFixed(2), width: Math.max(1, step - 0.5).toFixed(2), height: barHeight.toFixed(2), fill: colors[s], "data-series": s, "data-minute": i, "data-value": value }));
    });
  });
  const total = series.map((values) => values.reduce((a, b) => a + b, 0));
  return node(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label, "data-totals": total.join(",") },
    node("title", {}, `${label} (max ${max} per minute)`),
    node("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#e3e6ec" }),
    ...bars,
  );
}
