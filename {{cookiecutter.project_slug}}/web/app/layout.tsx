import type { Metadata } from "next";
import type { ReactNode } from "react";
import { Telemetry } from "../components/telemetry";
import { PROJECT_NAME } from "../lib/config";
import "./globals.css";

export const metadata: Metadata = { title: PROJECT_NAME };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <header className="site">
          <h1>{PROJECT_NAME}</h1>
        </header>
        {children}
        <Telemetry />
      </body>
    </html>
  );
}
