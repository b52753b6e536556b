/**
 * The last hour of a printer's temperatures on a uPlot canvas: actual (solid) and target (dashed)
 * per heater, from GET /printers/{name}/temperatures, then live from `printer.temperatures`.
 */
import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, ok } from "../api/client.ts";
import type { Envelope } from "../api/events-types.ts";
import { useLiveEvent } from "../live.ts";
import { ErrorNote } from "./error-note.tsx";

interface Sample {
  at: number;
  temperatures: { name: string; actual: number; target?: number }[];
}

const COLOURS = ["#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#e67700"];

export function TemperatureChart({ printer }: { printer: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const samples = useRef<Sample[]>([]);
  const heaters = useRef<string[]>([]);
  const keepMs = useRef(3_600_000);
  const [readings, setReadings] = useState(0);
  const history = useQuery({
    queryKey: ["temperatures", printer],
    queryFn: () =>
      ok(api.GET("/api/v1/printers/{name}/temperatures", { params: { path: { name: printer } } })),
    // Fetched once when the page opens; the live events extend it.
    gcTime: 0,
  });

  const draw = useCallback(() => {
    const element = box.current;
    if (!element) return;
    setReadings(samples.current.length);
    const names = [...new Set(samples.current.flatMap((s) => s.temperatures.map((t) => t.name)))].sort();
    const xs = samples.current.map((s) => s.at / 1000);
    const column = (name: string, key: "actual" | "target") =>
      samples.current.map((s) => s.temperatures.find((t) => t.name === name)?.[key] ?? null);
    const data: uPlot.AlignedData = [xs, ...names.flatMap((n) => [column(n, "actual"), column(n, "target")])];
    if (plot.current && names.join() === heaters.current.join()) {
      plot.current.setData(data);
      return;
    }
    plot.current?.destroy();
    heaters.current = names;
    plot.current = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: 260,
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min), Math.max(60, max + 10)] },
        },
        axes: [{}, { label: "°C" }],
        series: [
          {},
          ...names.flatMap((n, i) => {
            const stroke = COLOURS[i % COLOURS.length] ?? "#888";
            return [
              { label: `${n} actual`, stroke, width: 2 },
              { label: `${n} target`, stroke, dash: [6, 4], width: 1 },
            ];
          }),
        ],
      },
      data,
      element,
    );
  }, []);

  useEffect(() => {
    if (!history.data) return;
    keepMs.current = history.data.keepS * 1000;
    samples.current = history.data.samples.map((s) => ({
      at: Date.parse(s.at),
      temperatures: s.temperatures,
    }));
    draw();
  }, [history.data, draw]);

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(280, element.clientWidth), height: 260 }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  const onEvent = useCallback(
    (event: Envelope) => {
      if (event.type !== "printer.temperatures") return;
      const payload = (event as Envelope<"printer.temperatures">).payload;
      if (payload.printer !== printer || !history.data) return;
      samples.current.push({ at: event.at, temperatures: payload.temperatures });
      const oldest = event.at - keepMs.current;
      while ((samples.current[0]?.at ?? Infinity) < oldest) samples.current.shift();
      draw();
    },
    [printer, history.data, draw],
  );
  useLiveEvent(onEvent);

  return (
    <figure className="chart">
      <figcaption>Temperatures, last hour (solid: actual, dashed: target)</figcaption>
      <ErrorNote error={history.error} />
      <div ref={box} role="img" aria-label={`Temperature chart of ${printer}`} />
      {history.data && readings === 0 && <p className="none">No readings yet.</p>}
    </figure>
  );
}
