import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  LAB_MONITORING_TIMINGS,
  labReceiverConfig,
  labRules,
  labScrapeConfig,
} from '../support/lab/monitoring.js';
import { describeWithTools } from '../support/required-tools.js';

/**
 * The monitoring lab's generated configs (test/support/lab/monitoring.ts) are the shipped files
 * with only the lab's timings and addresses changed, and Prometheus's and Alertmanager's own
 * checkers accept them. The lab test runs them; this says what differs, without root.
 */

const execFileAsync = promisify(execFile);
const CONTRIB = join(import.meta.dirname, '../../contrib');
const shipped = (path: string) => readFileSync(join(CONTRIB, path), 'utf8');
type Yaml = Record<string, unknown>;

const dir = mkdtempSync(join(tmpdir(), 'okome-monitoring-lab-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const t = LAB_MONITORING_TIMINGS;
const rulesPath = join(dir, 'okome.rules.lab.yml');
const tokenPath = join(dir, 'token');
const rulesText = labRules(shipped('prometheus/okome.rules.yml'), t);
const scrapeText = labScrapeConfig(shipped('prometheus/prometheus.example.yml'), rulesPath, t);
const receiverText = labReceiverConfig(
  shipped('alertmanager/okome-receiver.yml'),
  'http://127.0.0.1:9099/alerts/alertmanager',
  tokenPath,
  t,
);

describeWithTools(
  'the monitoring lab configs',
  ['promtool', 'amtool'],
  'apt-get install prometheus prometheus-alertmanager',
  () => {
    it('promtool and amtool accept them', async () => {
      writeFileSync(rulesPath, rulesText);
      writeFileSync(tokenPath, 'token');
      writeFileSync(join(dir, 'prometheus.yml'), scrapeText);
      writeFileSync(join(dir, 'alertmanager.yml'), receiverText);
      await expect(
        execFileAsync('promtool', ['check', 'config', join(dir, 'prometheus.yml')]),
      ).resolves.toBeDefined();
      await expect(
        execFileAsync('amtool', ['check-config', join(dir, 'alertmanager.yml')]),
      ).resolves.toBeDefined();
    });

    it('the rules are the shipped ones but for `for:` (2 s; 0 s stays 0 s)', () => {
      const rules = (text: string) =>
        (parse(text) as { groups: { rules: Yaml[] }[] }).groups.flatMap((g) => g.rules);
      const lab = rules(rulesText);
      const prod = rules(shipped('prometheus/okome.rules.yml'));
      expect(lab.map(({ for: _, ...rest }) => rest)).toEqual(prod.map(({ for: _, ...rest }) => rest));
      for (const [i, rule] of prod.entries()) {
        const want = rule.for === undefined ? undefined : rule.for === '0s' ? '0s' : `${t.forSec}s`;
        expect(lab[i]?.for, String(rule.alert)).toBe(want);
      }
    });

    it('the scrape jobs are the example’s on lab addresses, every target in the lab or on loopback', () => {
      const lab = parse(scrapeText) as { global: Yaml; scrape_configs: Yaml[] };
      const prod = parse(shipped('prometheus/prometheus.example.yml')) as { scrape_configs: Yaml[] };
      expect(lab.global).toEqual({ scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' });
      expect(lab.scrape_configs.map((j) => j.job_name)).toEqual(
        prod.scrape_configs.map((j) => j.job_name).filter((n) => n !== 'okome-bot'),
      );
      const targets = JSON.stringify(lab.scrape_configs).match(/\d+\.\d+\.\d+\.\d+/g) ?? [];
      expect(targets.length).toBeGreaterThan(0);
      for (const target of targets) expect(target).toMatch(/^(10\.86\.0\.\d+|127\.0\.0\.1)$/);
      // The node labels the bot opens incidents on are the example's.
      expect(JSON.stringify(lab.scrape_configs).match(/"node":"pi-[ab]"/g)).toEqual(
        JSON.stringify(prod.scrape_configs).match(/"node":"pi-[ab]"/g),
      );
    });

    it('a target outside the lab is refused, never scraped', () => {
      // The orchestrator's target (host .25 in the example) moved to a documentation address.
      const shippedText = shipped('prometheus/prometheus.example.yml');
      const example = shippedText.replace(/\b(?:\d{1,3}\.){3}25:8000\b/, '203.0.113.7:8000');
      expect(example).not.toBe(shippedText);
      expect(() => labScrapeConfig(example, rulesPath, t)).toThrow(/neither a lab address nor loopback/);
    });

    it('the receiver is the shipped one but for its timings, URL and token file', () => {
      const lab = parse(receiverText) as Yaml;
      const prod = parse(shipped('alertmanager/okome-receiver.yml')) as Yaml;
      expect(lab.inhibit_rules).toEqual(prod.inhibit_rules);
      const route = lab.route as Yaml & { routes: Yaml[] };
      expect(route).toMatchObject({ group_wait: '0s', group_interval: '1s', repeat_interval: '3600s' });
      expect(route.group_by).toEqual((prod.route as Yaml).group_by);
      expect(route.routes[0]).toMatchObject({
        matchers: ['alertname="Watchdog"'],
        group_wait: '0s',
        group_interval: '1s',
        repeat_interval: '1s',
      });
      expect(receiverText).toContain('url: http://127.0.0.1:9099/alerts/alertmanager');
      expect(receiverText).toContain(`credentials_file: ${tokenPath}`);
      expect(receiverText).not.toContain('okome-bot.lan');
    });
  },
);
